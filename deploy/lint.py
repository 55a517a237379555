#!/usr/bin/env python3
"""Cross-references inside deploy/: which metrics the alert rules and the dashboard use,
and which ones deploy/OPERATIONS.md documents.

    python deploy/lint.py      # lists every metric referenced, and any not documented

The tests (tests/integration/test_deploy*.py, tests/e2e/test_metrics_scrape*.py) import it,
so the rule file, the dashboard, the catalogue and what the services really export cannot
drift apart unnoticed. Standard library plus PyYAML only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "humiao.json"
OPERATIONS = DEPLOY / "OPERATIONS.md"
#: Guides an operator reads: the operations guide, and the notifier's own guide (its
#: metrics catalogue and deploy files, until they are folded into OPERATIONS.md).
GUIDES = (OPERATIONS,)

#: Series Prometheus makes itself (not exported by a service).
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"})

_KEYWORDS = frozenset(
    {
        # aggregation operators (may be followed by `by`/`without` rather than "(")
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        # binary and modifier keywords
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "atan2",
        "inf",
        "nan",
        "Inf",
        "NaN",
    }
)
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_info")


@dataclass(frozen=True)
class Documented:
    """One row of the metrics catalogue in OPERATIONS.md."""

    name: str  # as it appears in a scrape: counters with _total, info with _info
    type: str  # counter | gauge | histogram | info | summary
    labels: frozenset[str]
    service: str


def balanced(expr: str) -> bool:
    """Parentheses, braces and brackets nest properly (outside string literals)."""
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[str] = []
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if ch in "({[":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (good enough for our own expressions)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers (and Grafana ${vars})
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables such as $__rate_interval
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text):
        word = match.group(1)
        rest = text[match.end() :].lstrip()
        if word in _KEYWORDS or rest.startswith("("):
            continue  # a keyword, or a function call
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def base_name(sample_name: str) -> str:
    """humiao_x_seconds_bucket -> humiao_x_seconds (for histogram and counter samples)."""
    for suffix in _SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def load_rules() -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def iter_rules() -> Iterator[dict[str, Any]]:
    for group in load_rules().get("groups", []):
        yield from group.get("rules", [])


def rule_metric_names() -> dict[str, set[str]]:
    """alert or record name -> metric names its expression uses."""
    return {
        str(rule.get("alert") or rule.get("record")): promql_metric_names(str(rule["expr"]))
        for rule in iter_rules()
    }


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # rows keep collapsed panels here


def dashboard_exprs() -> dict[str, list[str]]:
    """panel title -> the PromQL expressions of its targets."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for panel in iter_panels(board.get("panels", [])):
        exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        if exprs:
            found[panel["title"]] = exprs
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and isinstance(query, str):
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
            if inner:
                found[f"variable {var['name']}"] = [inner.group(1)]
    return found


def dashboard_metric_names() -> dict[str, set[str]]:
    return {
        title: set().union(*(promql_metric_names(e) for e in exprs))
        for title, exprs in dashboard_exprs().items()
    }


def documented_metrics() -> dict[str, Documented]:
    """The catalogue: rows `| `name` | type | `label`, ... | meaning |` under '## Metrics'
    of each guide (GUIDES) that has one."""
    found: dict[str, Documented] = {}
    for guide in GUIDES:
        text = guide.read_text(encoding="utf-8") if guide.is_file() else ""
        start = text.find("\n## Metrics")
        if start != -1:
            end = text.find("\n## ", start + 1)
            _read_catalogue(text[start : end if end != -1 else len(text)], found)
    return found


def _read_catalogue(section: str, found: dict[str, Documented]) -> None:
    service = ""
    for line in section.splitlines():
        heading = re.match(r"### (\w+)", line)
        if heading:
            service = heading.group(1).lower()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"`[a-z_:][a-z0-9_:]*`", cells[0]):
            continue
        name = cells[0].strip("`")
        labels = frozenset(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", cells[2]))
        if name in found:
            raise ValueError(f"the guides document {name} twice")
        found[name] = Documented(name, cells[1].lower(), labels, service)


def exported_names(doc: Documented) -> set[str]:
    """Sample names a documented metric produces in a scrape."""
    if doc.type == "histogram":
        return {f"{doc.name}_bucket", f"{doc.name}_sum", f"{doc.name}_count"}
    if doc.type == "summary":
        return {doc.name, f"{doc.name}_sum", f"{doc.name}_count"}
    return {doc.name}


def resolvable(name: str, documented: dict[str, Documented]) -> bool:
    """Does a name used in PromQL exist given the documented catalogue?"""
    if name in PROMETHEUS_SERIES:
        return True
    return any(name in exported_names(doc) for doc in documented.values())


def main() -> int:
    documented = documented_metrics()
    missing = 0
    for source, table in (("rule", rule_metric_names()), ("panel", dashboard_metric_names())):
        for title, names in sorted(table.items()):
            for name in sorted(names):
                ok = resolvable(name, documented)
                missing += not ok
                print(f"{'ok ' if ok else 'MISSING'} {source} {title!r}: {name}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
