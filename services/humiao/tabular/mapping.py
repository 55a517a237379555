"""A mapping: how one kind of spreadsheet becomes envelopes of one event kind.

Written in TOML by whoever knows the file (see docs/tabular-import.md):

    name = "payments"                 # part of every event id: never rename a mapping in use
    kind = "disbursement"             # the contract's body name
    key = ["流水号"]                   # optional: columns identifying a row across files
    recorded_at = "登记时间"           # optional column (absent: the time of the import)
    source = "bank-daifa"              # optional: the source when `--source` names none
    [constants]                        # contract fields set for every row
    region = "110105"
    [[columns]]
    header = "发放金额（元）"          # as it appears (full-width, spaces, merged groups
    field = "amountFen"                # as "上层/下层" all work); type "ignore" = never read
    type = "yuan"

Built-in mappings and code lists ship as package data in `humiao/tabular/mappings/`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from humiao.domain.events import ALL_KINDS
from humiao.tabular.convert import SIMPLE_CONVERTERS, code_converter, header_text

#: Rows whose first filled cell starts with one of these are totals or sign-off lines.
DEFAULT_SKIP_PREFIXES = ("合计", "总计", "小计", "制表", "填表", "审核", "负责人", "单位负责人")
_TYPES = {*SIMPLE_CONVERTERS, "code", "ignore"}
_TOP_KEYS = {"name", "title", "kind", "key", "recorded_at", "constants", "columns", "codes",
             "skip_rows_starting_with", "description", "source"}
_COLUMN_KEYS = {"header", "aliases", "field", "type", "codes", "fallback", "keep_text",
                "required"}
MAX_MAPPING_BYTES = 256 * 1024


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the key at fault."""


@dataclass(frozen=True)
class Column:
    """One mapped column: the headers it may appear under and how its cells convert."""

    header: str
    field: str | None  # contract path, e.g. "amountFen", "parents[0].personId"; None: ignore
    type: str
    convert: Callable[[Any], Any] | None
    aliases: tuple[str, ...] = ()
    required: bool = True
    codes: str | None = None  # the code list's name, for type "code"
    #: Contract field that keeps the sender's text when the fallback code was used.
    keep_text: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every header this column may appear under, compared as header_text does."""
        return tuple(header_text(h) for h in (self.header, *self.aliases))


@dataclass(frozen=True)
class TableMapping:
    name: str
    kind: str
    columns: tuple[Column, ...]
    title: str = ""
    key: tuple[str, ...] = ()
    recorded_at: str | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    skip_prefixes: tuple[str, ...] = DEFAULT_SKIP_PREFIXES
    #: the envelopes' source when the command line names none (a feed's own mapping)
    source: str | None = None

    def with_constants(self, extra: Mapping[str, Any]) -> TableMapping:
        """The mapping with constants added or replaced (e.g. `--set region=110105`)."""
        return replace(self, constants={**self.constants, **extra})

    def column_for_field(self, path: str) -> Column | None:
        """The column that fills a contract field path (a gateway violation's field)."""
        for column in self.columns:
            if column.field is not None and (path == column.field
                                             or path.endswith("." + column.field)):
                return column
        return None


def builtin_names() -> list[str]:
    folder = resources.files("humiao.tabular") / "mappings"
    return sorted(p.name[:-5] for p in folder.iterdir()
                  if p.name.endswith(".toml") and p.name != "codes.toml")


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_MAPPING_BYTES:
        raise MappingError(f"{origin}: larger than {MAX_MAPPING_BYTES} bytes")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{origin}: not valid TOML ({exc})") from None


def builtin_codes() -> dict[str, dict[str, str]]:
    """The shipped code lists (programs, situations, changes, end reasons)."""
    text = (resources.files("humiao.tabular") / "mappings" / "codes.toml").read_text("utf-8")
    return {name: dict(table) for name, table in _read_toml(text, "codes.toml").items()}


def load_mapping(name_or_path: str | Path) -> TableMapping:
    """A built-in mapping by name (`payments`) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return parse_mapping(path.read_text(encoding="utf-8"), str(path))
    folder = resources.files("humiao.tabular") / "mappings"
    name = str(name_or_path).removesuffix(".toml")
    if name in builtin_names():
        return parse_mapping((folder / f"{name}.toml").read_text("utf-8"), f"{name}.toml")
    raise MappingError(f"no mapping {str(name_or_path)!r}: give a .toml file or one of "
                       + ", ".join(builtin_names()))


def parse_mapping(text: str, origin: str = "mapping") -> TableMapping:
    doc = _read_toml(text, origin)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise MappingError(f"{origin}: unknown key(s) {', '.join(sorted(unknown))}")
    name, kind = doc.get("name"), doc.get("kind")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise MappingError(f"{origin}: `name` must be letters, digits, - or _")
    if kind not in ALL_KINDS:
        raise MappingError(f"{origin}: `kind` must be one of {', '.join(sorted(ALL_KINDS))}")
    codes = builtin_codes()
    own = doc.get("codes", {})
    if not isinstance(own, dict):
        raise MappingError(f"{origin}: `codes` must be a table of code lists")
    codes.update({k: dict(v) for k, v in own.items()})
    raw_columns = doc.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise MappingError(f"{origin}: `columns` must list at least one [[columns]] table")
    columns = tuple(_column(c, codes, f"{origin}: columns[{i}]")
                    for i, c in enumerate(raw_columns))
    headers = {c.header for c in columns}
    key = tuple(doc.get("key", ()))
    recorded_at = doc.get("recorded_at")
    for wanted in key:
        if wanted not in headers:
            raise MappingError(f"{origin}: `key` names {wanted!r}, not a column")
    if recorded_at is not None and not isinstance(recorded_at, str):
        raise MappingError(f"{origin}: `recorded_at` must be a column heading")
    constants = doc.get("constants", {})
    if not isinstance(constants, dict):
        raise MappingError(f"{origin}: `constants` must be a table")
    skip = tuple(doc.get("skip_rows_starting_with", DEFAULT_SKIP_PREFIXES))
    source = doc.get("source")
    if source is not None and not isinstance(source, str):
        raise MappingError(f"{origin}: `source` must be a source name")
    return TableMapping(name, str(kind), columns, str(doc.get("title", "")), key, recorded_at,
                        constants, skip, source)


def _column(raw: Any, codes: dict[str, dict[str, str]], where: str) -> Column:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: must be a table")
    unknown = set(raw) - _COLUMN_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    header, kind = raw.get("header"), raw.get("type", "text")
    if not isinstance(header, str) or not header_text(header):
        raise MappingError(f"{where}: `header` must be the column's heading")
    if kind not in _TYPES:
        raise MappingError(f"{where}: `type` must be one of {', '.join(sorted(_TYPES))}")
    target = raw.get("field")
    if kind != "ignore" and not isinstance(target, str):
        raise MappingError(f"{where}: `field` (the contract field) is required")
    convert: Callable[[Any], Any] | None = None
    if kind == "code":
        table = raw.get("codes")
        if table not in codes:
            raise MappingError(f"{where}: `codes` must name a code list ({', '.join(codes)})")
        convert = code_converter(codes[table], raw.get("fallback"))
    elif kind != "ignore":
        convert = SIMPLE_CONVERTERS[kind]
    return Column(header, None if kind == "ignore" else target, kind, convert,
                  tuple(raw.get("aliases", ())), bool(raw.get("required", True)),
                  raw.get("codes"), raw.get("keep_text"))
