"""What an import sent before, to retract a row's earlier version when it is corrected.

One small JSON file per source and mapping, beside the input file by default
(`.humiao-import.<source>.<mapping>.json`): row key -> event id, where the row key is a
keyed hash of the mapping's key columns (rows.py), never their values. Corrections
must therefore be imported where the earlier file was, or with `--state` naming the
same file. Written atomically and private (0600).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: A state file larger than this is refused (a feed has at most a few million keys).
MAX_STATE_BYTES = 256 * 1024 * 1024


def default_state_path(input_path: Path, source: str, mapping: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in source)
    return input_path.parent / f".humiao-import.{safe}.{mapping}.json"


def load_state(path: Path) -> dict[str, str]:
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_STATE_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, dict):
        raise ValueError(f"{path}: not an import state file")
    return {str(k): str(v) for k, v in keys.items()}


def save_state(path: Path, source: str, mapping: str, keys: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"source": source, "mapping": mapping, "keys": keys}, out)
    tmp.replace(path)
