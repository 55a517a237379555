"""Policy files: defaults match DESIGN.md section 3; bad files fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from humiao.domain.policy import DEFAULT_POLICY_FILE, PolicyBook, PolicyError, RegionPolicy
from humiao.domain.values import Program, Situation


def test_packaged_default_file_equals_built_in_defaults() -> None:
    book = PolicyBook.load(DEFAULT_POLICY_FILE)
    assert book.default_policy == RegionPolicy() == PolicyBook.default().for_region("110105")
    assert book.regions == {}
    p = RegionPolicy()
    assert p.age_limit == 18 and p.schooling_extension_allowed
    assert p.orphan_parent_found_stops_same_month and not p.death_stops_same_month
    assert p.de_facto_reference_program is Program.ORPHAN_DISPERSED


def test_example_region_overrides() -> None:
    book = PolicyBook.load(DEFAULT_POLICY_FILE.with_name("example-regions.toml"))
    assert not book.for_region("110105").schooling_extension_allowed
    assert book.for_region("110105").age_limit == 18
    east = book.for_region("110108")
    assert east.death_stops_same_month
    assert Situation.UNKNOWN in east.de_facto_other_parent_situations
    assert book.for_region("999999") == RegionPolicy()


def test_region_inherits_default_table(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('[default]\nage_limit = 16\n[region."110105"]\nchild_may_be_payee = false\n')
    book = PolicyBook.load(f)
    assert book.for_region("110105").age_limit == 16
    assert not book.for_region("110105").child_may_be_payee
    assert book.for_region("120000").child_may_be_payee


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[region."110105"]\nagelimit = 17\n', r'region\."110105"\.agelimit: unknown policy key'),
        ("[default]\nage_limit = true\n", r"default\.age_limit: must be a whole number"),
        ("[default]\nage_limit = 0\n", r"default\.age_limit: must be a whole number"),
        ('[default]\nchild_may_be_payee = "yes"\n', r"child_may_be_payee: must be true or false"),
        ('[default]\nde_facto_reference_program = "X"\n', r"de_facto_reference_program: must be"),
        (
            '[default]\norphan_parent_situations = ["DEAD"]\n',
            r"orphan_parent_situations: unknown situation 'DEAD'",
        ),
        ('[region."1101"]\nage_limit = 18\n', r"region\.'1101': must be a 6-digit"),
        ("[defaults]\nage_limit = 18\n", r"unknown top-level key 'defaults'"),
        ("[default\n", r"not valid TOML"),
    ],
)
def test_bad_policy_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PolicyError, match=message) as err:
        PolicyBook.load(f)
    assert str(f) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        PolicyBook.load(tmp_path / "nope.toml")
