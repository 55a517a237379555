"""Plain-language explanations of alerts, in Chinese for staff and in English.

These texts travel on Kafka and appear in lists, so they name dates, periods, programs
and amounts in yuan only: never an ID number, a name or a disbursement id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from humiao.domain.alerts import AlertCode
from humiao.domain.values import Period, Program, Situation, StatusChange, format_fen

PROGRAM_ZH = {
    Program.ORPHAN_INSTITUTIONAL: "集中养育孤儿",
    Program.ORPHAN_DISPERSED: "社会散居孤儿",
    Program.DE_FACTO_UNSUPPORTED: "事实无人抚养儿童",
}
PROGRAM_EN = {
    Program.ORPHAN_INSTITUTIONAL: "institutional orphan",
    Program.ORPHAN_DISPERSED: "dispersed orphan",
    Program.DE_FACTO_UNSUPPORTED: "de facto unsupported child",
}
SITUATION_ZH = {
    Situation.SEVERELY_DISABLED: "重残",
    Situation.SERIOUSLY_ILL: "重病",
    Situation.IN_CUSTODY: "服刑在押",
    Situation.COMPULSORY_REHAB: "强制隔离戒毒",
    Situation.LIBERTY_RESTRICTED: "被执行其他限制人身自由的措施",
    Situation.LOST_CONTACT: "失联",
    Situation.GUARDIANSHIP_REVOKED: "被撤销监护资格",
    Situation.DEPORTED: "被遣送出境",
    Situation.DECEASED: "死亡",
    Situation.MISSING_DECLARED: "被宣告失踪",
    Situation.UNKNOWN: "查找不到",
}
SITUATION_EN = {
    Situation.SEVERELY_DISABLED: "severely disabled",
    Situation.SERIOUSLY_ILL: "seriously ill",
    Situation.IN_CUSTODY: "in custody",
    Situation.COMPULSORY_REHAB: "in compulsory drug rehabilitation",
    Situation.LIBERTY_RESTRICTED: "under another restriction of liberty",
    Situation.LOST_CONTACT: "lost contact",
    Situation.GUARDIANSHIP_REVOKED: "guardianship revoked",
    Situation.DEPORTED: "deported",
    Situation.DECEASED: "deceased",
    Situation.MISSING_DECLARED: "declared missing",
    Situation.UNKNOWN: "cannot be found",
}


@dataclass(frozen=True, slots=True)
class Cause:
    """Why one month is not payable: the check, the events it rests on, and the facts to
    name in the explanation (which fields are set depends on the code)."""

    code: AlertCode
    evidence: tuple[str, ...]
    day: dt.date | None = None
    month: Period | None = None
    situation: Situation | None = None
    #: For parent causes: STARTED/ENDED of a status change, None for a death.
    change: StatusChange | None = None
    program: Program | None = None
    other_programs: tuple[Program, ...] = ()
    age_limit: int = 0


def _as(program: Program) -> str:
    """'an institutional orphan', 'a dispersed orphan', 'a de facto unsupported child'."""
    name = PROGRAM_EN[program]
    return ("an " if name[0] in "aeiou" else "a ") + name


def _paid_zh(period: Period, amount_fen: int) -> str:
    return f"但{period}月仍发放津贴 {format_fen(amount_fen)} 元"


def _paid_en(period: Period, amount_fen: int) -> str:
    return f"but an allowance of {format_fen(amount_fen)} yuan was paid for {period}"


def _parent_event(c: Cause) -> tuple[str, str] | None:
    """The parent event behind a parent-situation cause as a clause; None when the
    situations recorded at enrollment never qualified the child."""
    if c.day is None or c.situation is None:
        return None
    if c.change is None:
        return f"父母一方已于{c.day}死亡", f"a parent died on {c.day}"
    zh_sit, en_sit = SITUATION_ZH[c.situation], SITUATION_EN[c.situation]
    if c.change is StatusChange.ENDED:
        return (
            f"父母一方“{zh_sit}”的情形已于{c.day}结束",
            f"a parent's situation '{en_sit}' ended on {c.day}",
        )
    return (
        f"父母一方自{c.day}起为“{zh_sit}”",
        f"a parent has been '{en_sit}' since {c.day}",
    )


def cause_clause(c: Cause) -> tuple[str, str]:
    """The 'why' part of a not-payable explanation."""
    code = c.code
    if code is AlertCode.PAID_AFTER_DEATH:
        return f"儿童已于{c.day}死亡", f"The child died on {c.day}"
    if code is AlertCode.PAID_AFTER_ADOPTION:
        return f"儿童已于{c.day}被收养", f"The child was adopted on {c.day}"
    if code is AlertCode.PAID_AFTER_AGE_OUT:
        zh = f"儿童已于{c.month}月年满{c.age_limit}周岁"
        en = f"The child turned {c.age_limit} in {c.month}"
        if c.day is not None:
            zh += f"，在学延长已于{c.day}到期"
            en += f" and the schooling extension ran out on {c.day}"
        return zh, en
    if code is AlertCode.PAID_AFTER_ENROLLMENT_ENDED:
        prog = c.program or Program.ORPHAN_DISPERSED
        return (
            f"儿童的{PROGRAM_ZH[prog]}保障已于{c.day}终止",
            f"The child's {PROGRAM_EN[prog]} enrollment ended on {c.day}",
        )
    if code is AlertCode.PAID_BEFORE_APPROVAL:
        return (
            f"儿童于{c.day}获批，应自{c.month}月起发放",
            f"The child was approved on {c.day}, so payment starts with {c.month}",
        )
    if code is AlertCode.NOT_ENROLLED:
        prog = c.program or Program.ORPHAN_DISPERSED
        zh = f"儿童未纳入{PROGRAM_ZH[prog]}保障"
        en = f"The child is not enrolled as {_as(prog)}"
        if c.other_programs:
            zh += "（仅纳入" + "、".join(PROGRAM_ZH[p] for p in c.other_programs) + "）"
            en += " (only as " + ", ".join(_as(p) for p in c.other_programs) + ")"
        return zh, en
    if code is AlertCode.ORPHAN_PARENT_ALIVE:
        if c.day is not None and c.situation is not None and c.change is StatusChange.ENDED:
            return (
                f"孤儿的父母一方已于{c.day}被确认在世（原情形：{SITUATION_ZH[c.situation]}）",
                f"A parent of the orphan was found alive on {c.day} "
                f"(was: {SITUATION_EN[c.situation]})",
            )
        event = _parent_event(c)
        if event is None:
            return (
                "按登记时的父母情形，儿童不符合孤儿条件",
                "The parents' situations recorded at enrollment do not make the child an orphan",
            )
        zh, en = event
        return zh + "，儿童不再符合孤儿条件", en[0].upper() + en[1:] + ", so the child is no orphan"
    if code is AlertCode.PAID_AFTER_PARENT_SITUATION_ENDED:
        event = _parent_event(c)
        if event is None:
            return (
                "按登记时的父母情形，儿童不符合事实无人抚养儿童条件",
                "The parents' situations recorded at enrollment do not qualify the child as "
                "de facto unsupported",
            )
        zh, en = event
        return (
            zh + "，儿童不再符合事实无人抚养儿童条件",
            en[0].upper() + en[1:] + ", so the child no longer qualifies as de facto unsupported",
        )
    raise ValueError(f"not a not-payable check: {code.name}")  # pragma: no cover


def not_payable(c: Cause, period: Period, amount_fen: int) -> tuple[str, str]:
    zh, en = cause_clause(c)
    return f"{zh}，{_paid_zh(period, amount_fen)}。", f"{en}, {_paid_en(period, amount_fen)}."


def amount_mismatch(
    period: Period, paid_fen: int, standard_fen: int, program: Program
) -> tuple[str, str]:
    diff = paid_fen - standard_fen
    over = diff > 0
    return (
        f"{period}月发放 {format_fen(paid_fen)} 元，{PROGRAM_ZH[program]}标准为 "
        f"{format_fen(standard_fen)} 元，{'多发' if over else '少发'} {format_fen(abs(diff))} 元。",
        f"{format_fen(paid_fen)} yuan was paid for {period} but the {PROGRAM_EN[program]} "
        f"standard is {format_fen(standard_fen)} yuan: {'over' if over else 'under'}paid by "
        f"{format_fen(abs(diff))} yuan.",
    )


def payee_not_guardian(
    period: Period,
    paid_on: dt.date,
    amount_fen: int,
    guardian_since: dt.date | None,
    child_allowed: bool,
) -> tuple[str, str]:
    amount = format_fen(amount_fen)
    also_zh = "，也不是儿童本人" if child_allowed else ""
    also_en = " nor the child" if child_allowed else ""
    if guardian_since is None:
        if child_allowed:
            return (
                f"截至{paid_on}未指定监护人，{period}月津贴 {amount} 元的领取人也不是儿童本人。",
                f"No guardian had been appointed by {paid_on}, and the payee of {amount} yuan "
                f"for {period} is not the child.",
            )
        return (
            f"截至{paid_on}未指定监护人，{period}月津贴 {amount} 元没有有效的领取人。",
            f"No guardian had been appointed by {paid_on}, so the {amount} yuan for {period} "
            "had no valid payee.",
        )
    return (
        f"{period}月津贴 {amount} 元于{paid_on}发放，领取人不是当日在任的监护人"
        f"（自{guardian_since}起任职）{also_zh}。",
        f"{amount} yuan for {period} was paid on {paid_on} to someone who is neither the "
        f"guardian in force that day (appointed from {guardian_since}){also_en}.",
    )


def payee_deceased(
    period: Period, paid_on: dt.date, amount_fen: int, died_on: dt.date
) -> tuple[str, str]:
    amount = format_fen(amount_fen)
    return (
        f"领取人已于{died_on}死亡，但{paid_on}仍向其发放{period}月津贴 {amount} 元。",
        f"The payee died on {died_on}, but {amount} yuan for {period} was paid to them "
        f"on {paid_on}.",
    )


def duplicate(period: Period, count: int, total_fen: int, at_risk_fen: int) -> tuple[str, str]:
    return (
        f"{period}月共发放 {count} 笔津贴，合计 {format_fen(total_fen)} 元，"
        f"重复发放 {format_fen(at_risk_fen)} 元。",
        f"{count} payments totalling {format_fen(total_fen)} yuan were made for {period}: "
        f"{format_fen(at_risk_fen)} yuan of it paid more than once.",
    )


def missed(period: Period, program: Program, standard_fen: int | None) -> tuple[str, str]:
    if standard_fen is None:
        std_zh, std_en = "", ""
    else:
        std_zh = f"（标准 {format_fen(standard_fen)} 元）"
        std_en = f" (standard {format_fen(standard_fen)} yuan)"
    return (
        f"{period}月发放周期已结束，儿童符合{PROGRAM_ZH[program]}条件，但未发放津贴{std_zh}。",
        f"The payment cycle for {period} closed and the child qualifies as "
        f"{_as(program)}, but nothing was paid{std_en}.",
    )
