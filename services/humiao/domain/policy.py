"""Per-region eligibility policy: every number and rule of DESIGN.md section 3, configurable.

A policy file is TOML: a ``[default]`` table overrides the built-in defaults (which match
section 3), and ``[region."110105"]`` tables override ``[default]`` for one region. Unknown
keys and values of the wrong type are rejected with the key's path, because a silently
ignored typo in a policy file would quietly change who gets paid.

Stop rules: for each ending event a ``*_stops_same_month`` flag says whether payment stops
in the month of the event (True) or from the month after (False, the default except for
an orphan's parent found alive).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humiao.domain.values import (
    DE_FACTO_SITUATIONS,
    ORPHAN_SITUATIONS,
    Program,
    Situation,
)

#: The policy file shipped with the package (its values equal the built-in defaults).
DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[1] / "policy" / "default.toml"


@dataclass(frozen=True, slots=True)
class RegionPolicy:
    """The rules one region applies; the defaults are DESIGN.md section 3."""

    #: Payment stops after the month of this birthday (unless a schooling extension holds).
    age_limit: int = 18
    #: Whether a schooling extension keeps a child past the age limit payable.
    schooling_extension_allowed: bool = True
    #: False: payable from the month after approval; True: from the approval month itself.
    payable_from_approval_month: bool = False
    death_stops_same_month: bool = False
    adoption_stops_same_month: bool = False
    age_out_stops_same_month: bool = False
    enrollment_end_stops_same_month: bool = False
    #: De facto child: False = payable when it qualified on the month's first day.
    parent_situation_end_stops_same_month: bool = False
    #: Orphan's parent found alive: True = that month is no longer payable.
    orphan_parent_found_stops_same_month: bool = True
    #: The child itself is a valid payee.
    child_may_be_payee: bool = True
    #: Institutional orphans are paid to the institution appointed as guardian; False turns
    #: the payee check off for ORPHAN_INSTITUTIONAL (a region paying a central account).
    institution_for_institutional: bool = True
    #: Whose standard a de facto child gets when no standard of its own is in effect.
    de_facto_reference_program: Program = Program.ORPHAN_DISPERSED
    #: Parent situations that make a child de facto unsupported.
    de_facto_parent_situations: frozenset[Situation] = DE_FACTO_SITUATIONS
    #: Situations the *other* parent of a de facto child may be in (absent but not listed).
    de_facto_other_parent_situations: frozenset[Situation] = frozenset(
        {Situation.DECEASED, Situation.MISSING_DECLARED}
    )
    #: Situations in which a parent counts as absent for an orphan.
    orphan_parent_situations: frozenset[Situation] = ORPHAN_SITUATIONS


_FIELDS = {f.name: f for f in dataclasses.fields(RegionPolicy)}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the key path and the reason."""


def _convert(path: str, name: str, value: Any) -> Any:
    """Check and convert one TOML value to the field's type."""
    default = getattr(RegionPolicy(), name)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise PolicyError(f"{path}.{name}: must be true or false")
        return value
    if isinstance(default, int) and not isinstance(default, Program):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 150:
            raise PolicyError(f"{path}.{name}: must be a whole number of years (1-149)")
        return value
    if isinstance(default, Program):
        if not isinstance(value, str) or value not in Program.__members__:
            raise PolicyError(f"{path}.{name}: must be one of {', '.join(Program.__members__)}")
        return Program[value]
    if isinstance(default, frozenset):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{path}.{name}: must be a list of situation names")
        unknown = [v for v in value if v not in Situation.__members__]
        if unknown:
            raise PolicyError(
                f"{path}.{name}: unknown situation {unknown[0]!r} "
                f"(known: {', '.join(Situation.__members__)})"
            )
        return frozenset(Situation[v] for v in value)
    raise PolicyError(f"{path}.{name}: unsupported setting")  # pragma: no cover


def _overrides(path: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise PolicyError(f"{path}: must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FIELDS:
            raise PolicyError(
                f"{path}.{key}: unknown policy key (known: {', '.join(sorted(_FIELDS))})"
            )
        out[key] = _convert(path, key, value)
    return out


@dataclass(frozen=True)
class PolicyBook:
    """The default policy plus per-region overrides; ``for_region`` never fails."""

    default_policy: RegionPolicy = field(default_factory=RegionPolicy)
    regions: Mapping[str, RegionPolicy] = field(default_factory=dict)

    def for_region(self, region: str) -> RegionPolicy:
        return self.regions.get(region, self.default_policy)

    @classmethod
    def default(cls) -> PolicyBook:
        """Section 3 of DESIGN.md everywhere."""
        return cls()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "policy") -> PolicyBook:
        """Build from parsed TOML (``default`` and ``region`` tables); errors name the key."""
        for key in data:
            if key not in ("default", "region"):
                raise PolicyError(
                    f"{source}: unknown top-level key {key!r} (expected [default] and "
                    '[region."<6-digit code>"])'
                )
        base = dataclasses.replace(
            RegionPolicy(), **_overrides(f"{source}: default", data.get("default", {}))
        )
        regions_table = data.get("region", {})
        if not isinstance(regions_table, Mapping):
            raise PolicyError(f"{source}: region: must be a table of region tables")
        regions: dict[str, RegionPolicy] = {}
        for code, table in regions_table.items():
            if not (len(code) == 6 and code.isdigit()):
                raise PolicyError(f"{source}: region.{code!r}: must be a 6-digit region code")
            regions[code] = dataclasses.replace(
                base, **_overrides(f'{source}: region."{code}"', table)
            )
        return cls(base, regions)

    @classmethod
    def load(cls, path: str | Path) -> PolicyBook:
        """Read a TOML policy file; raises PolicyError naming the file and key on bad input."""
        p = Path(path)
        try:
            with p.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{p}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise PolicyError(f"{p}: cannot read: {exc.strerror}") from exc
        return cls.from_mapping(data, str(p))
