"""What notifications say, pure: group messages, the daily digest and the test message,
rendered as Markdown (the common ground of WeCom, DingTalk and Feishu) with the
structured alerts beside it for webhooks.

A message carries the code in Chinese, the region, the period, the amount at risk in
yuan and the child's masked ID, never a whole ID or a name. A message longer than the
receiver takes is split at alert lines; past `max_messages` parts, the rest of the group
is summarised with a link to the console.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from humiao.domain.labels import CODES_ZH
from humiao.domain.notify import Announce, DigestFigures, Note, Route
from humiao.domain.values import format_fen

BRAND = "【护苗】"
ANNOUNCE_ZH = {
    Announce.NEW: "新增",
    Announce.REOPENED: "重新打开",
    Announce.RESOLVED: "已办结",
    Announce.WITHDRAWN: "已撤销",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One announced alert of a message (what a webhook receives per alert)."""

    alert_id: str
    version: int
    code: str
    status: str
    announce: str
    region: str
    period: str
    amount_fen: int
    child_mask: str
    changed_at: str
    url: str


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one receiver; `kind` is group, digest or test."""

    kind: str
    title: str
    markdown: str
    lines: tuple[Line, ...] = ()
    region: str = ""
    code: str = ""
    part: int = 1
    parts: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Message:
        data: dict[str, Any] = json.loads(text)
        data["lines"] = tuple(Line(**line) for line in data.get("lines", ()))
        return cls(**data)

    @property
    def firing(self) -> bool:
        """Alertmanager's status: resolved only for a group message whose every line
        closes an alert (a digest or a test message is "firing": news to read)."""
        if self.kind != "group":
            return True
        return any(line.announce in ("new", "reopened") for line in self.lines)


def yuan(fen: int) -> str:
    return f"{format_fen(fen)} 元"


def code_zh(code: str) -> str:
    return CODES_ZH.get(code, code)


def alert_url(console: str | None, alert_id: str) -> str:
    return f"{console.rstrip('/')}/alerts/{quote(alert_id)}" if console else ""


def list_url(console: str | None, region: str = "", code: str = "") -> str:
    if not console:
        return ""
    query = urlencode({k: v for k, v in (("region", region), ("code", code)) if v})
    return f"{console.rstrip('/')}/alerts" + (f"?{query}" if query else "")


def _line(note: Note, kind: Announce, console: str | None) -> Line:
    return Line(
        alert_id=note.alert_id, version=note.version, code=note.code, status=note.status,
        announce=kind.value, region=note.region, period=note.period,
        amount_fen=note.amount_fen, child_mask=note.child_mask,
        changed_at=note.changed_at.isoformat(), url=alert_url(console, note.alert_id),
    )


def _markdown_line(line: Line) -> str:
    child = f"`{line.child_mask}`" if line.child_mask else "—"
    text = (
        f"- **{ANNOUNCE_ZH[Announce(line.announce)]}** {line.period} · 儿童 {child}"
        f" · 风险金额 {yuan(line.amount_fen)}"
    )
    return text + (f" · [查看]({line.url})" if line.url else "")


def _tally(lines: list[Line]) -> str:
    counts = Counter(Announce(line.announce) for line in lines)
    parts = [f"{ANNOUNCE_ZH[k]} {counts[k]} 条" for k in Announce if counts[k]]
    at_risk = sum(line.amount_fen for line in lines if line.announce in ("new", "reopened"))
    return "、".join(parts) + (f",新增风险金额 {yuan(at_risk)}" if at_risk else "")


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def compose_group(
    route: Route,
    region: str,
    code: str,
    said: list[tuple[Note, Announce]],
    *,
    max_bytes: int,
    console: str | None,
) -> list[Message]:
    """The messages one group flush becomes: every announced alert on a line, split to
    fit `max_bytes` of Markdown, at most `route.max_messages` messages."""
    if not said:
        return []
    lines = [_line(note, kind, console) for note, kind in said]
    title = f"{BRAND}{code_zh(code)} · 地区 {region}"
    link = list_url(console, region, code)
    footer = f"\n\n[在控制台查看全部]({link})" if link else ""
    chunks = _pack(lines, title, footer, max_bytes)
    limit = max(1, route.max_messages)
    if len(chunks) > limit:
        kept, rest = chunks[: limit - 1], [ln for chunk in chunks[limit - 1 :] for ln in chunk]
        chunks = [*kept, rest]
        summarised = rest
    else:
        summarised = []
    out = []
    for i, chunk in enumerate(chunks, start=1):
        head = f"### {title}" + (f"({i}/{len(chunks)})" if len(chunks) > 1 else "")
        if chunk is summarised:
            body = _summary(chunk, link)
        else:
            body = f"> {_tally(chunk)}\n\n" + "\n".join(_markdown_line(ln) for ln in chunk)
        out.append(Message("group", title, f"{head}\n{body}{footer}", tuple(chunk),
                           region, code, i, len(chunks)))
    return out


def _pack(lines: list[Line], title: str, footer: str, max_bytes: int) -> list[list[Line]]:
    """Greedy packing of lines into messages of at most max_bytes (head and tally
    reserved generously so a message never exceeds the limit)."""
    reserve = _utf8(f"### {title}(999/999)\n> ") + 200 + _utf8(footer)
    chunks: list[list[Line]] = [[]]
    size = reserve
    for line in lines:
        n = _utf8(_markdown_line(line)) + 1
        if chunks[-1] and size + n > max_bytes:
            chunks.append([])
            size = reserve
        chunks[-1].append(line)
        size += n
    return chunks


def _summary(lines: list[Line], link: str) -> str:
    where = f"[在控制台查看全部]({link})" if link else "请在控制台按地区与类型查看"
    return f"> 另有 {len(lines)} 条告警未逐条列出:{_tally(lines)}。\n\n{where}"


def compose_digest(
    route: Route, figures: DigestFigures, day: dt.date, *, console: str | None, tz: dt.tzinfo
) -> Message:
    """The daily digest of one route (its regions and codes)."""
    regions = "全部" if route.regions is None else "、".join(sorted(route.regions))
    codes = "全部" if route.codes is None else "、".join(code_zh(c) for c in sorted(route.codes))
    title = f"{BRAND}每日汇总 {day.isoformat()}"
    oldest = "无"
    if figures.oldest_unacknowledged is not None:
        when = figures.oldest_unacknowledged.astimezone(tz)
        oldest = f"{when:%Y-%m-%d %H:%M}"
    link = list_url(console)
    body = "\n".join([
        f"### {title}",
        f"> 地区:{regions};类型:{codes}",
        "",
        f"- 待处理告警:{figures.open_alerts} 条",
        f"- 过去 24 小时新增:{figures.new_alerts} 条",
        f"- 过去 24 小时办结或撤销:{figures.resolved_alerts} 条",
        f"- 待处理风险金额:{yuan(figures.amount_at_risk_fen)}",
        f"- 最早未认领告警发现于:{oldest}",
    ]) + (f"\n\n[在控制台查看]({link})" if link else "")
    return Message("digest", title, body)


def compose_test(receiver: str, now: dt.datetime) -> Message:
    title = f"{BRAND}测试消息"
    body = (
        f"### {title}\n> 接收方 {receiver} 配置正确,可以收到护苗告警通知。\n\n"
        f"发送时间:{now.isoformat(timespec='seconds')}"
    )
    return Message("test", title, body)
