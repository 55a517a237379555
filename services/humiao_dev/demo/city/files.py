"""A city in another order, and on disk: envelopes, truth."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humiao.domain.events import (
    Envelope,
)
from humiao_dev.demo.city.model import (
    City,
    ExpectedAlert,
)


def shuffled(events: Sequence[Envelope], seed: int, duplicates: float = 0.05,
             late: float = 0.03) -> list[Envelope]:
    """The same facts in another order: shuffled, some delivered twice, some very late.

    The set of facts is unchanged, so the final alerts must be too (DESIGN.md section 6).
    """
    rng = random.Random(seed)
    order = list(events)
    rng.shuffle(order)
    n_late = int(len(order) * late)
    stragglers = order[:n_late]
    order = order[n_late:]
    for env in rng.sample(list(events), int(len(events) * duplicates)):
        order.insert(rng.randrange(len(order) + 1), env)
    return order + stragglers


@dataclass(frozen=True)
class CityFiles:
    events: Path
    corrections: Path
    truth: Path


def write_envelopes(path: Path, envelopes: Iterable[Envelope]) -> int:
    """One envelope per line, protobuf's canonical JSON (what `humiao ingest` reads)."""
    from humiao.adapters.codec import envelope_to_proto, proto_to_json

    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for env in envelopes:
            fh.write(proto_to_json(envelope_to_proto(env)))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def truth_document(city: City) -> dict[str, Any]:
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(city.config).items()},
        "children": city.children,
        "events": len(city.events),
        "corrections": len(city.corrections),
        "disbursements": city.disbursements,
        "stories": city.stories,
        "alerts": [a.to_json() for a in sorted(city.truth)],
        "beforeCorrections": [a.to_json() for a in sorted(city.before_corrections)],
    }


def write_city(city: City, directory: Path, *, shuffle: bool = False) -> CityFiles:
    """Write the city's two envelope files and its truth; shuffled with duplicates if asked."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "-shuffled" if shuffle else ""
    events: Sequence[Envelope] = city.events
    corrections: Sequence[Envelope] = city.corrections
    if shuffle:
        events = shuffled(city.events, city.config.seed + 1)
        corrections = shuffled(city.corrections, city.config.seed + 2, late=0.0)
    files = CityFiles(directory / f"events{suffix}.jsonl",
                      directory / f"corrections{suffix}.jsonl", directory / "truth.json")
    write_envelopes(files.events, events)
    write_envelopes(files.corrections, corrections)
    files.truth.write_text(json.dumps(truth_document(city), indent=1, ensure_ascii=False))
    return files


def load_truth(path: Path) -> tuple[frozenset[ExpectedAlert], frozenset[ExpectedAlert]]:
    """(truth, before_corrections) from a truth.json written by write_city."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return (frozenset(ExpectedAlert.from_json(a) for a in doc["alerts"]),
            frozenset(ExpectedAlert.from_json(a) for a in doc["beforeCorrections"]))

