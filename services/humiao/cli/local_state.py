"""Where the local stack (`humiao up`, development tooling) leaves its state, read by the
product's commands so that `humiao ingest` and `humiao alerts` find the local gateway and
desk without flags. Only reading lives here; writing is the tooling's (humiao_dev.stack)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"


def project_root(start: Path | None = None) -> Path:
    """The nearest directory up from `start` (cwd) with a pyproject.toml or a .humiao/."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / ".humiao").is_dir():
            return candidate
    return here


def state_dir() -> Path:
    """HUMIAO_STATE_DIR, else .humiao/ under the project root."""
    configured = os.environ.get("HUMIAO_STATE_DIR")
    return Path(configured).resolve() if configured else project_root() / ".humiao"


def state_file() -> Path:
    """Where `humiao up` writes, and every other command reads, the stack's state:
    HUMIAO_STACK_FILE if set, else stack.json in the state directory."""
    configured = os.environ.get("HUMIAO_STACK_FILE")
    return Path(configured) if configured else state_dir() / STATE_FILE


def read_local_state(path: Path | None = None) -> dict[str, Any]:
    """The state file as a mapping; empty when there is none or it is unreadable."""
    try:
        data = json.loads((path or state_file()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
