import datetime as dt

import pytest

from humiao.domain.identity import citizen_id_check_char, citizen_id_problem, mask_id
from humiao.domain.values import Period, format_fen


def test_period_parse_and_arithmetic() -> None:
    p = Period.parse("2024-12")
    assert str(p + 1) == "2025-01"
    assert p.first_day() == dt.date(2024, 12, 1)
    assert Period.of_date(dt.date(2025, 1, 31)) == p + 1
    assert Period.parse("2024-01") < p


@pytest.mark.parametrize("bad", ["2024-13", "2024-00", "24-01", "2024/01", "2024-1", ""])
def test_period_rejects_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse(bad)


def test_citizen_id_check_digit() -> None:
    first17 = "11010520100101123"
    valid = first17 + citizen_id_check_char(first17)
    assert citizen_id_problem(valid) is None
    wrong = first17 + ("0" if valid[-1] != "0" else "1")
    assert citizen_id_problem(wrong) == "check digit does not match (GB 11643)"
    assert citizen_id_problem("123") == "must be 18 characters"


def test_mask_and_money() -> None:
    assert mask_id("11010520100101123X") == "110105***********X"
    assert format_fen(123456) == "1,234.56"
    assert format_fen(-5) == "-0.05"
