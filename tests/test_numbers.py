"""Numbers as Finnish and English write them (vocabulary/numbers.py)."""

from __future__ import annotations

import math

import pytest

from vocabulary.numbers import MINUS, NBSP, euros, natural, number, percent


@pytest.mark.parametrize("value, decimals, fi, en", [
    (45578, 0, f"45{NBSP}578", "45,578"),
    (1234567.891, 2, f"1{NBSP}234{NBSP}567,89", "1,234,567.89"),
    (0.5, 1, "0,5", "0.5"),
    (-2.07, 2, f"{MINUS}2,07", f"{MINUS}2.07"),
    (-0.04, 1, "0,0", "0.0"),  # rounds to zero: no minus sign
    (999.96, 1, f"1{NBSP}000,0", "1,000.0"),
])
def test_number(value, decimals, fi, en):
    assert number(value, "fi", decimals) == fi and number(value, "en", decimals) == en


def test_natural_percent_and_euros():
    assert natural(12.0, "fi") == "12" and natural(32.94, "fi") == "32,9" and natural(32.94, "en") == "32.9"
    assert percent(0.254, "fi") == f"25,4{NBSP}%" and percent(0.254, "en") == "25.4%"
    assert percent(0.0, "fi", 0) == f"0{NBSP}%"
    assert euros(45578.4, "fi") == f"45{NBSP}578{NBSP}€" and euros(45578.4, "en") == "€45,578"
    assert euros(-12, "en") == f"{MINUS}€12"


def test_a_missing_value_has_no_number():
    with pytest.raises(ValueError, match="missing"):
        number(math.nan, "fi")
    with pytest.raises(ValueError, match="missing"):
        number(None, "en")  # type: ignore[arg-type]
