"""`humiao ingest FILE.xlsx|FILE.csv --mapping NAME_OR_PATH`: the command-line side of
the tabular import (the `ingest` command routes spreadsheet files here)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from humiao.tabular.importer import (
    DEVELOPMENT_KEY,
    ImportResult,
    ImportSettings,
    import_workbook,
)
from humiao.tabular.mapping import MappingError, builtin_names, load_mapping
from humiao.tabular.readers import TableError

#: What `humiao ingest` treats as a spreadsheet.
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv")


def is_spreadsheet(path: Path) -> bool:
    return path.suffix.lower() in SPREADSHEET_SUFFIXES


def register_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spreadsheets (.xlsx, .csv): see docs/tabular-import.md")
    group.add_argument("--mapping", metavar="NAME|FILE.toml",
                       help="how the columns become events: " + ", ".join(builtin_names())
                       + ", or a mapping file")
    group.add_argument("--set", dest="constants", action="append", default=[],
                       metavar="FIELD=VALUE",
                       help="a constant for every row, e.g. --set region=110105 (repeatable)")
    group.add_argument("--source", help="the envelopes' source (default: the mapping's "
                                        "`source`, else .humiao/stack.json's)")
    group.add_argument("--state", metavar="PATH",
                       help="what earlier imports sent, to retract corrected rows (default "
                            "beside FILE: .humiao-import.SOURCE.MAPPING.json)")
    group.add_argument("--errors", metavar="PATH",
                       help="the error workbook of refused rows (default FILE.errors.xlsx)")


def _constants(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise MappingError(f"--set {pair!r}: expected FIELD=VALUE")
        out[name.strip()] = value.strip()
    return out


def run_spreadsheet(args: argparse.Namespace, path: Path, stub: Any, token: str,
                    default_source: str | None, target: str = "") -> ImportResult:
    """Raises MappingError or TableError with a message for the user."""
    if not target.startswith(("127.", "localhost", "[::1]")) and \
            ImportSettings().humiao_import_key == DEVELOPMENT_KEY:
        print("warning: HUMIAO_IMPORT_KEY is unset (the development key derives the event "
              "ids): set a key of your own, kept for good, before importing for real",
              file=sys.stderr)
    if not args.mapping:
        raise MappingError("a spreadsheet needs --mapping (one of "
                           + ", ".join(builtin_names()) + ", or a .toml file)")
    mapping = load_mapping(args.mapping).with_constants(_constants(args.constants))
    source = args.source or mapping.source or default_source
    if not source:
        raise MappingError("no source: pass --source (the name your token's credential has)")
    return import_workbook(path, mapping, stub, token, source=source,
                           state_path=Path(args.state) if args.state else None,
                           error_book=Path(args.errors) if args.errors else None,
                           chunk_size=args.chunk_size)


__all__ = ["TableError", "is_spreadsheet", "register_options", "run_spreadsheet"]
