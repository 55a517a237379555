"""Compare the alerts the stack raised with the city's ground truth.

An alert counts as *raised* while the current facts imply it (`alerts.implied`), as
*withdrawn* when the verifier took it back. The per-code table is a pure function of the
two sets, so the recorded and the shuffled run print the same table when the system is
right. Transient alerts of a shuffled feed (a payment seen before its enrollment) end up
withdrawn too; they are not the corrections' withdrawals and are left out of the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from humiao.domain.alerts import AlertCode
from humiao.domain.values import Period, format_fen
from humiao_dev.demo.city import ExpectedAlert


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """One row of the alerts table, as much as scoring needs."""

    alert_id: str
    code: AlertCode
    child_id: str
    period: Period
    subject: str
    status: str
    implied: bool
    amount_at_risk_fen: int

    def key(self) -> ExpectedAlert:
        return ExpectedAlert(self.code, self.child_id, self.period, self.subject)


@dataclass(frozen=True)
class CodeScore:
    code: AlertCode
    injected: int
    raised: int
    withdrawn: int
    missed: int
    spurious: int
    amount_found_fen: int

    @property
    def correct(self) -> int:
        return self.raised - self.spurious

    @property
    def precision(self) -> float:
        return self.correct / self.raised if self.raised else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.injected if self.injected else 1.0


@dataclass(frozen=True)
class Score:
    rows: tuple[CodeScore, ...]
    missed: frozenset[ExpectedAlert]
    spurious: frozenset[ExpectedAlert]
    #: Alerts the corrections should withdraw, and how many of them are withdrawn.
    expected_withdrawn: int
    withdrawn: int

    @property
    def injected(self) -> int:
        return sum(r.injected for r in self.rows)

    @property
    def raised(self) -> int:
        return sum(r.raised for r in self.rows)

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.rows)

    @property
    def precision(self) -> float:
        return self.correct / self.raised if self.raised else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.injected if self.injected else 1.0

    @property
    def amount_found_fen(self) -> int:
        return sum(r.amount_found_fen for r in self.rows)

    @property
    def perfect(self) -> bool:
        return not self.missed and not self.spurious and self.withdrawn == self.expected_withdrawn


def score(truth: Iterable[ExpectedAlert], alerts: Sequence[RaisedAlert],
          expected_withdrawn: Iterable[ExpectedAlert] = ()) -> Score:
    """Per check code: injected, raised, withdrawn, missed, spurious, amount found."""
    truth = frozenset(truth)
    expected_gone = frozenset(expected_withdrawn)
    raised = {a.key(): a for a in alerts if a.implied}
    gone = {a.key() for a in alerts if not a.implied and a.status == "WITHDRAWN"}
    missed = truth - raised.keys()
    spurious = frozenset(raised.keys() - truth)
    rows = []
    for code in AlertCode:
        rows.append(CodeScore(
            code=code,
            injected=sum(1 for a in truth if a.code is code),
            raised=sum(1 for a in raised if a.code is code),
            withdrawn=sum(1 for a in expected_gone if a.code is code and a in gone),
            missed=sum(1 for a in missed if a.code is code),
            spurious=sum(1 for a in spurious if a.code is code),
            amount_found_fen=sum(r.amount_at_risk_fen for k, r in raised.items()
                                 if k.code is code and k in truth),
        ))
    return Score(tuple(rows), frozenset(missed), spurious, len(expected_gone),
                 len(expected_gone & gone))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render(result: Score) -> list[str]:
    """The table the demo prints (plain text, fixed width)."""
    head = (f"{'check':<34}{'injected':>9}{'raised':>8}{'withdrawn':>10}{'missed':>8}"
            f"{'spurious':>9}{'precision':>10}{'recall':>8}{'at risk (yuan)':>16}")
    lines = [head, "-" * len(head)]
    for r in result.rows:
        lines.append(
            f"{r.code.name:<34}{r.injected:>9}{r.raised:>8}{r.withdrawn:>10}{r.missed:>8}"
            f"{r.spurious:>9}{_pct(r.precision):>10}{_pct(r.recall):>8}"
            f"{format_fen(r.amount_found_fen):>16}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"{'all checks':<34}{result.injected:>9}{result.raised:>8}{result.withdrawn:>10}"
        f"{len(result.missed):>8}{len(result.spurious):>9}{_pct(result.precision):>10}"
        f"{_pct(result.recall):>8}{format_fen(result.amount_found_fen):>16}"
    )
    return lines


def _senders_id(subject: str) -> str:
    """The generator's own id of a subject: ingest qualifies ids with their source
    (`<source>/<id>`, docs/grants.md); the city's ids hold no "/"."""
    return subject.split("/", 1)[-1]


async def fetch_alerts(database_url: str) -> list[RaisedAlert]:
    """Every alert row of the stack's database (the verifier's verdicts)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT alert_id, code, child_id, period, subject, status, implied,"
            " amount_at_risk_fen FROM alerts"
        )
    finally:
        await conn.close()
    return [
        RaisedAlert(
            alert_id=r["alert_id"],
            code=AlertCode[r["code"]],
            child_id=r["child_id"],
            period=Period.parse(r["period"]),
            subject=_senders_id(r["subject"]),
            status=r["status"],
            implied=bool(r["implied"]),
            amount_at_risk_fen=int(r["amount_at_risk_fen"]),
        )
        for r in rows
    ]
