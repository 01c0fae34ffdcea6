"""Exact money at the edge: decimal text <-> integer cents and satoshis.

Inside zmqex a price is an ``int`` of US cents and a quantity an ``int`` of
satoshis.  Conversion happens only here, and only from values that represent a
decimal exactly (``str``, ``int``, ``decimal.Decimal``).  Floats are refused
outright: ``0.1`` is not one tenth, and a float near money is a bug.
"""

from __future__ import annotations

import re
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Any, Final

from zmqex.errors import InvalidAmount

CENTS_PER_USD = 100
SATS_PER_BTC = 100_000_000

#: Largest accepted price: 10 million USD per BTC, in cents.
MAX_PRICE: Final = 10_000_000 * CENTS_PER_USD  # Final: see core/tif.py
#: Largest accepted quantity: every bitcoin there will ever be, in satoshis.
MAX_QTY: Final = 21_000_000 * SATS_PER_BTC

Amount = str | int | Decimal

_MAX_TEXT = 40  # longer text cannot be a valid amount; refuse before parsing
# Plain ASCII decimals only: Decimal() would also take "1_000", "1e3" and non-ASCII digits.
_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _to_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, float):
        raise InvalidAmount(
            f"{what} must be a decimal string, int or Decimal, not float ({value!r}): "
            "a float cannot hold money exactly"
        )
    if isinstance(value, bool):
        raise InvalidAmount(f"{what} must be a decimal string, int or Decimal, not bool")
    if isinstance(value, int):
        if value.bit_length() > 128:
            raise InvalidAmount(f"{what} is far too large")
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT or not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidAmount(f"{what} {value[:_MAX_TEXT]!r} is not a plain decimal number like 1.5")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidAmount(f"{what} {value!r} is not a decimal number") from None
    else:
        raise InvalidAmount(f"{what} must be a decimal string, int or Decimal, not {type(value).__name__}")
    if not number.is_finite():
        raise InvalidAmount(f"{what} {_short(value)} is not a finite number")
    return number


# The common case, "123.45678", parsed without Decimal: whole digits and at most as many
# fraction digits as the unit has places.  Anything else (and anything out of range)
# takes the general path below, which gives the errors.
_PLAIN = {unit: re.compile(rf"([0-9]{{1,15}})(?:\.([0-9]{{1,{len(str(unit)) - 1}}}))?")
          for unit in (CENTS_PER_USD, SATS_PER_BTC)}
_PLACES = {unit: len(str(unit)) - 1 for unit in (CENTS_PER_USD, SATS_PER_BTC)}


def _scaled(value: object, what: str, unit: int, unit_name: str, maximum: int) -> int:
    if type(value) is str and (plain := _PLAIN[unit].fullmatch(value)) is not None:
        whole, frac = plain.groups()
        result = int(whole) * unit + (int(frac.ljust(_PLACES[unit], "0")) if frac else 0)
        if 0 < result <= maximum:
            return result
    number = _to_decimal(value, what)
    if number <= 0:
        raise InvalidAmount(f"{what} must be positive, got {_short(value)}")
    if number.adjusted() > 20:  # cheap bound before scaling a huge exponent
        raise InvalidAmount(f"{what} {_short(value)} is too large")
    with localcontext() as ctx:
        # Exact arithmetic: an input longer than the precision must not round
        # its way into looking like a whole number of cents.
        ctx.prec = 100
        # getattr: traps is a SignalDict, not the dict typeshed declares, and mypyc-compiled
        # code checks what it reads against the declared type (TypeError).
        traps: Any = getattr(ctx, "traps")
        traps[Inexact] = True
        try:
            scaled = number * unit
        except Inexact:
            raise InvalidAmount(f"{what} {_short(value)} has too many digits") from None
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{what} {_short(value)} is not a whole number of {unit_name}")
    result = int(scaled)
    if result > maximum:
        raise InvalidAmount(f"{what} {_short(value)} is above the maximum {_format(maximum, unit)}")
    return result


def _short(value: object) -> str:
    text = repr(value)  # ints are bounded above, so repr() cannot hit the digit limit
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def parse_price(value: Amount) -> int:
    """Parse a USD price per BTC into integer cents (tick 0.01 USD)."""
    return _scaled(value, "price", CENTS_PER_USD, "cents (tick 0.01)", MAX_PRICE)


def parse_qty(value: Amount) -> int:
    """Parse a BTC quantity into integer satoshis (lot 0.00000001 BTC)."""
    return _scaled(value, "quantity", SATS_PER_BTC, "satoshis (lot 0.00000001)", MAX_QTY)


def _format(amount: int, unit: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), unit)
    return f"{sign}{whole}.{str(frac).zfill(_PLACES[unit])}"


def format_price(cents: int) -> str:
    """Integer cents as a decimal string with two places: ``5000012 -> "50000.12"``."""
    return _format(cents, CENTS_PER_USD)


def format_qty(sats: int) -> str:
    """Integer satoshis as a decimal string with eight places."""
    return _format(sats, SATS_PER_BTC)


def check_price(cents: object) -> int:
    """Validate a price that arrived already scaled (wire format)."""
    if type(cents) is int and 0 < cents <= MAX_PRICE:
        return cents  # every order placed: the check inline, a call less
    return _check_int(cents, "price", MAX_PRICE)


def check_qty(sats: object) -> int:
    """Validate a quantity that arrived already scaled (wire format)."""
    if type(sats) is int and 0 < sats <= MAX_QTY:
        return sats  # as check_price
    return _check_int(sats, "quantity", MAX_QTY)


def notional(price: int, qty: int) -> int:
    """The US cents that ``qty`` satoshis at ``price`` cents per BTC are worth, rounded down.

    Both sides of a trade move exactly this amount, and rounding down is what
    lets an order reserve ``notional(limit, open)`` up front: for fills at
    ``p_i <= limit`` summing to at most ``open``, ``sum(notional(p_i, q_i))`` never
    exceeds it, since ``floor(a) + floor(b) <= floor(a + b)``.  O(1).
    """
    return price * qty // SATS_PER_BTC


def _check_int(value: object, what: str, maximum: int) -> int:
    if type(value) is not int:
        raise InvalidAmount(f"{what} must be an integer, not {type(value).__name__}")
    if not 0 < value <= maximum:
        raise InvalidAmount(f"{what} {value} is out of range 1..{maximum}")
    return value
