"""Tests for zmqex.core.money: exact decimal text <-> integer cents and satoshis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqex.core.money import (
    MAX_PRICE,
    MAX_QTY,
    check_price,
    check_qty,
    format_price,
    format_qty,
    parse_price,
    parse_qty,
)
from zmqex.errors import InvalidAmount

PARSERS = [
    pytest.param(parse_price, "price", id="price"),
    pytest.param(parse_qty, "quantity", id="qty"),
]
CHECKERS = [
    pytest.param(check_price, "price", MAX_PRICE, id="price"),
    pytest.param(check_qty, "quantity", MAX_QTY, id="qty"),
]


def assert_rejected(func, value, field: str) -> InvalidAmount:
    """``func(value)`` raises InvalidAmount whose message names ``field``."""
    with pytest.raises(InvalidAmount) as excinfo:
        func(value)
    assert str(excinfo.value).startswith(field), str(excinfo.value)
    return excinfo.value


# --- valid input -------------------------------------------------------------


@pytest.mark.parametrize(
    "value, cents",
    [
        ("50000.12", 5_000_012),
        ("0.01", 1),
        ("1", 100),
        ("1.5", 150),
        ("1.10000", 110),
        ("10000000.00", MAX_PRICE),
        (" 42.00 ", 4_200),
        (50_000, 5_000_000),
        (1, 100),
        (Decimal("50000.12"), 5_000_012),
        (Decimal("0.01"), 1),
        (Decimal("1E+3"), 100_000),
    ],
)
def test_parse_price_valid(value, cents):
    assert parse_price(value) == cents


@pytest.mark.parametrize(
    "value, sats",
    [
        ("1", 100_000_000),
        ("0.00000001", 1),
        ("0.5", 50_000_000),
        ("21000000", MAX_QTY),
        (3, 300_000_000),
        (Decimal("0.12345678"), 12_345_678),
    ],
)
def test_parse_qty_valid(value, sats):
    assert parse_qty(value) == sats


def test_parse_returns_plain_int():
    assert type(parse_price(Decimal("1.23"))) is int
    assert type(parse_qty("1.23")) is int


def test_decimal_with_many_trailing_zeros_is_still_exact():
    # 121 digits, but exactly one dollar: precision must not reject it.
    assert parse_price(Decimal("1." + "0" * 120)) == 100


# --- formatting and round trips ----------------------------------------------


@pytest.mark.parametrize(
    "cents, text",
    [(5_000_012, "50000.12"), (1, "0.01"), (100, "1.00"), (MAX_PRICE, "10000000.00"), (-5, "-0.05")],
)
def test_format_price(cents, text):
    assert format_price(cents) == text


@pytest.mark.parametrize(
    "sats, text",
    [(1, "0.00000001"), (100_000_000, "1.00000000"), (MAX_QTY, "21000000.00000000")],
)
def test_format_qty(sats, text):
    assert format_qty(sats) == text


@given(st.integers(1, MAX_PRICE))
def test_price_round_trip(cents):
    assert parse_price(format_price(cents)) == cents


@given(st.integers(1, MAX_QTY))
def test_qty_round_trip(sats):
    assert parse_qty(format_qty(sats)) == sats


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000.00"), places=2))
def test_price_text_and_decimal_agree(number):
    assert parse_price(format(number, "f")) == parse_price(number) == int(number * 100)


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("21000000"), places=8))
def test_qty_text_and_decimal_agree(number):
    assert parse_qty(format(number, "f")) == parse_qty(number) == int(number * 100_000_000)


# --- rejected input ----------------------------------------------------------


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize("value", [0.1, 1.0, 50000.12, float("nan"), float("inf")])
def test_parse_rejects_float(parse, field, value):
    error = assert_rejected(parse, value, field)
    assert "float" in str(error)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize("value", [True, False, None, [1], b"1", 1j])
def test_parse_rejects_other_types(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize(
    "value",
    ["NaN", "-nan", "sNaN", "inf", "-Infinity", Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")],
)
def test_parse_rejects_non_finite(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize("value", ["0", "-0", "0.00", "-1", -1, 0, Decimal("0"), Decimal("-0.01")])
def test_parse_rejects_zero_and_negative(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("value", ["1.001", "0.001", "0.005", Decimal("50000.125")])
def test_parse_price_rejects_off_tick(value):
    error = assert_rejected(parse_price, value, "price")
    assert "whole number of cents" in str(error)


@pytest.mark.parametrize("value", ["0.000000001", "1.000000001", Decimal("0.123456789"), Decimal("1E-9")])
def test_parse_qty_rejects_off_lot(value):
    error = assert_rejected(parse_qty, value, "quantity")
    assert "whole number of satoshis" in str(error)


@pytest.mark.parametrize("value", ["10000000.01", "100000000", MAX_PRICE, Decimal("1E+20")])
def test_parse_price_rejects_above_maximum(value):
    assert_rejected(parse_price, value, "price")


@pytest.mark.parametrize("value", ["21000000.00000001", "21000001", MAX_QTY, Decimal("1E+20")])
def test_parse_qty_rejects_above_maximum(value):
    assert_rejected(parse_qty, value, "quantity")


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize(
    "value",
    ["1e30", "1e-999999", "1E+999999999", "1e-99999999999999999999999999999999999", Decimal("1E+999999")],
)
def test_parse_rejects_huge_exponents(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize(
    "value",
    ["9" * 41, "1" * 10_000, "0." + "0" * 10_000 + "1", "1" + " " * 100 + "2"],
)
def test_parse_rejects_absurdly_long_text(parse, field, value):
    error = assert_rejected(parse, value, field)
    assert "is not a plain decimal number" in str(error)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize(
    "value",
    [Decimal("1." + "0" * 99 + "1"), Decimal("0." + "1" * 101), Decimal("1" * 101 + "E-100")],
)
def test_parse_rejects_decimal_with_over_100_digits(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize(
    "value", ["", "   ", "abc", "1.2.3", "$5", "5 USD", "0x10", "1,000", "1/2", "--1", "e5", "."]
)
def test_parse_rejects_non_numeric_text(parse, field, value):
    assert_rejected(parse, value, field)


@pytest.mark.parametrize("parse, field", PARSERS)
def test_parse_rejects_int_with_over_4300_digits(parse, field):
    assert_rejected(parse, 10**5000, field)


_AMOUNTS = st.one_of(
    st.from_regex(r"\A\s?[+-]?\d{0,12}(\.\d{0,10})?([eE][+-]?\d{1,7})?\s?\Z"),
    st.text(max_size=50),
    st.integers(),
    st.decimals(),
    st.floats(),
    st.booleans(),
    st.none(),
)


@pytest.mark.parametrize("parse, field, maximum", [(parse_price, "price", MAX_PRICE), (parse_qty, "quantity", MAX_QTY)])
@given(value=_AMOUNTS)
def test_parse_returns_in_range_int_or_raises_invalid_amount(parse, field, maximum, value):
    try:
        result = parse(value)
    except InvalidAmount as error:
        assert str(error).startswith(field)
    else:
        assert type(result) is int and 1 <= result <= maximum


# --- check_price / check_qty -------------------------------------------------


@pytest.mark.parametrize("check, field, maximum", CHECKERS)
def test_check_accepts_ints_in_range(check, field, maximum):
    assert check(1) == 1
    assert check(maximum) == maximum
    assert check(12_345) == 12_345


@pytest.mark.parametrize("check, field, maximum", CHECKERS)
def test_check_rejects_out_of_range(check, field, maximum):
    for value in (0, -1, maximum + 1, 10**30):
        assert_rejected(check, value, field)


@pytest.mark.parametrize("check, field, maximum", CHECKERS)
@pytest.mark.parametrize("value", [True, False, 1.0, 100.0, "1", Decimal(1), None, [1]])
def test_check_rejects_non_int(check, field, maximum, value):
    assert_rejected(check, value, field)


@pytest.mark.parametrize("check, field, maximum", CHECKERS)
def test_check_rejects_int_subclass(check, field, maximum):
    class Cents(int):
        pass

    assert_rejected(check, Cents(5), field)


@given(st.integers(1, MAX_PRICE))
def test_check_price_accepts_every_parsed_price(cents):
    assert check_price(parse_price(format_price(cents))) == cents


@pytest.mark.parametrize("parse, field", PARSERS)
@pytest.mark.parametrize("value", ["1e3", "1E-8", "1_000", "１２", "+1", "-", "1.2.3", " . "])
def test_parse_accepts_only_plain_ascii_decimals(parse, field, value):
    error = assert_rejected(parse, value, field)
    assert "plain decimal number" in str(error)


# --- the fast path for plain text agrees with exact decimal arithmetic -----------

_PLAIN_TEXT = st.from_regex(r"\A[0-9]{1,18}(\.[0-9]{0,10})?\Z")


@pytest.mark.parametrize("parse, unit, maximum", [(parse_price, 100, MAX_PRICE), (parse_qty, 10**8, MAX_QTY)])
@given(text=_PLAIN_TEXT)
def test_plain_text_parses_exactly_as_decimal_arithmetic_says(parse, unit, maximum, text):
    exact = Decimal(text) * unit
    valid = exact == exact.to_integral_value() and 0 < exact <= maximum
    if valid:
        assert parse(text) == int(exact)
    else:
        with pytest.raises(InvalidAmount):
            parse(text)
