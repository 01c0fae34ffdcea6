"""The client protocol's part for a node's accounts: trader balances and bilateral credit.

:mod:`zmqex.protocol` lists the ops (``fund``, ``balance``, ``set_credit``,
``settle``, ``credit``), their arguments and errors; this module holds what is
theirs, in the same manner (pure, maps in and maps out): reading their
arguments (node and client alike), building them from a program's values, the
views of a balance and of this node's credit as the wire carries them (amounts
as decimal strings), and strict parsers of those views for clients.
docs/protocol.md ("Balances", "Credit") is what a client sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict, cast

from zmqex.core import money, wire
from zmqex.core.balances import MAX_BTC, MAX_USD, Balance
from zmqex.core.credit import MAX_CREDIT
from zmqex.core.money import Amount
from zmqex.errors import DecodeError, InvalidAmount, InvalidRequest
from zmqex.protocol import (
    ANY_DESK, PRICE_PLACES, QTY_PLACES, TRADER_RULE, _AMOUNT, _map, is_trader_name, trader_name,
)


class CreditLimits(TypedDict):
    limit: str | None  # USD of open exposure; None: no limit
    daily: str | None  # USD traded a UTC day; None: no limit


class DeskCredit(CreditLimits):
    """This node's credit for one counterparty desk: the limits in force and where it stands."""

    exposure: str  # USD of open exposure from trades (traded both ways, less settled)
    pending: str  # USD in flight: asked, granted or held, not yet a trade
    today: str  # USD traded today (UTC, by the node's clock)
    room: str | None  # what the limits leave for new trades; None: unlimited


class CreditView(TypedDict):
    default: CreditLimits | None  # the limits of ``*``: for every desk without its own
    desks: dict[str, DeskCredit]


def credit_view(info: Mapping[str, Any]) -> CreditView:
    """The credit as :meth:`zmqex.core.credit.Credit.view` gives it (cents), as the wire carries it."""
    default = info["default"]
    return {"default": None if default is None else {"limit": _usd(default[0]), "daily": _usd(default[1])},
            "desks": {desk: {"limit": _usd(d["limit"]), "daily": _usd(d["daily"]),
                             "exposure": money.format_price(d["exposure"]), "pending": money.format_price(d["pending"]),
                             "today": money.format_price(d["today"]), "room": _usd(d["room"])}
                      for desk, d in info["desks"].items()}}


def settled(cents: int, view: CreditView) -> dict[str, Any]:
    """The result of ``settle``: how much it marked settled, and the credit after."""
    return {"settled": money.format_price(cents), **view}


def _usd(cents: int | None) -> str | None:
    return None if cents is None else money.format_price(cents)


def desk_field(value: Any, default: bool = True) -> str:
    """A ``desk``: a node's id, or (``default``) ``*`` for every desk without limits of its own."""
    if default and type(value) is str and value == ANY_DESK:
        return value
    if not wire.is_node_id(value):
        raise InvalidRequest(f"desk must be a node id{' or ' + ANY_DESK if default else ''} "
                             f"(1-32 characters of A-Z a-z 0-9 _ . -), got {wire.brief(value, 40)}")
    return value  # type: ignore[no-any-return]  # is_node_id: a str


def usd_field(value: Any, what: str, zero: bool = True) -> int:
    """A USD amount as a request carries it (a decimal string, at most 2 decimals, 0 allowed if ``zero``), in cents."""
    if type(value) is not str or _AMOUNT[PRICE_PLACES].fullmatch(value) is None:
        raise InvalidAmount(f"{what} must be a decimal string of USD like \"1000.50\", at most {PRICE_PLACES} "
                            f"decimals and 16 digits before the point, got {wire.brief(value, 40)}"
                            f"{' (a float cannot hold money exactly)' if type(value) is float else ''}")
    whole, _, frac = value.partition(".")
    cents = int(whole) * money.CENTS_PER_USD + int(frac.ljust(PRICE_PLACES, "0") or "0")
    if not zero and cents == 0:
        raise InvalidAmount(f"{what} must be more than 0")
    return cents


def credit_args(request: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    """(desk, limit, daily limit) of a ``set_credit``, in cents; None: no such limit."""
    if "limit" not in request:
        raise InvalidRequest("set_credit needs limit: a USD amount, or null for none")
    limit, daily = request["limit"], request.get("daily")
    return (desk_field(request.get("desk")), None if limit is None else usd_field(limit, "limit"),
            None if daily is None else usd_field(daily, "daily"))


def settle_args(request: Mapping[str, Any]) -> tuple[str, int]:
    """(desk, cents) of a ``settle``."""
    return desk_field(request.get("desk"), default=False), usd_field(request.get("usd"), "usd", zero=False)


_CENT = Decimal("0.01")


def usd_text(value: Amount, what: str, zero: bool = True) -> str:
    """A program's USD amount (str as on the wire, int of dollars, Decimal) as the wire carries it."""
    cents = -1
    if type(value) is str:
        cents = usd_field(value, what, zero)
    elif type(value) is int:
        cents = value * money.CENTS_PER_USD
    elif isinstance(value, Decimal):
        try:
            whole_cents = value.quantize(_CENT)
        except InvalidOperation:  # not finite, or too many digits
            whole_cents = _CENT / 3
        if whole_cents == value:
            cents = int(whole_cents * money.CENTS_PER_USD)
    if not 0 <= cents <= MAX_CREDIT:
        raise InvalidAmount(f"{what} must be a decimal string, an int of dollars or a Decimal of whole cents, "
                            f"0 or more, got {wire.brief(value, 40)}")
    if not zero and cents == 0:
        raise InvalidAmount(f"{what} must be more than 0")
    return money.format_price(cents)


def set_credit_request(desk: str, limit: Amount | None, daily: Amount | None = None) -> dict[str, Any]:
    """The arguments of a ``set_credit`` from a program's values, checked as a node checks them."""
    args: dict[str, Any] = {"desk": desk_field(desk), "limit": None if limit is None else usd_text(limit, "limit")}
    if daily is not None:
        args["daily"] = usd_text(daily, "daily")
    return args


def settle_request(desk: str, usd: Amount) -> dict[str, Any]:
    """The arguments of a ``settle`` from a program's values, checked as a node checks them."""
    return {"desk": desk_field(desk, default=False), "usd": usd_text(usd, "usd", zero=False)}


#: The most one ``fund`` may move, and an account may be funded to: USD (cents) and BTC (satoshis).
MAX_FUND_USD, MAX_FUND_BTC = MAX_USD, MAX_BTC


#: A signed amount (``fund``): an amount as above, or zero, with an optional leading minus (a withdrawal).
_CHANGE = {places: re.compile(rf"(-?)(0|[1-9][0-9]{{0,15}})(?:\.([0-9]{{1,{places}}}))?")
           for places in (PRICE_PLACES, QTY_PLACES)}


_UNIT = {PRICE_PLACES: money.CENTS_PER_USD, QTY_PLACES: money.SATS_PER_BTC}


class Holding(TypedDict):
    """One currency of a balance: ``available`` is ``total`` less what open orders ``reserved``."""

    total: str
    reserved: str
    available: str


class BalanceView(TypedDict):
    trader: str
    usd: Holding  # 2 decimals
    btc: Holding  # 8 decimals


def balance_view(balance: Balance) -> BalanceView:
    """An account as :class:`~zmqex.core.balances.Balance` gives it (integers), as the wire carries it."""
    price, qty = money.format_price, money.format_qty
    return {"trader": balance.trader,
            "usd": {"total": price(balance.usd_total), "reserved": price(balance.usd_reserved),
                    "available": price(balance.usd_available)},
            "btc": {"total": qty(balance.btc_total), "reserved": qty(balance.btc_reserved),
                    "available": qty(balance.btc_available)}}


def wire_change(value: Any, what: str, places: int, most: int) -> int:
    """A signed amount as a ``fund`` request carries it, in cents (``places`` 2) or satoshis (8).

    The form of an amount (a decimal string, no leading zero, at most ``places``
    decimals), zero allowed, with an optional minus; at most ``most`` units either
    way.  InvalidAmount otherwise.
    """
    if type(value) is not str:
        raise InvalidAmount(f"{what} must be a decimal string like \"-1.5\", not {type(value).__name__}"
                            f"{' (a float cannot hold money exactly)' if type(value) is float else ''}")
    found = _CHANGE[places].fullmatch(value)
    if found is None:
        raise InvalidAmount(f"{what} {wire.brief(value, 40)} must be digits with at most {places} decimals and an "
                            "optional leading minus, like \"-1.5\": no plus, space, exponent or leading zero")
    minus, whole, fraction = found.groups()
    units = int(whole) * _UNIT[places] + (int(fraction.ljust(places, "0")) if fraction else 0)
    if units > most:
        raise InvalidAmount(f"{what} {wire.brief(value, 40)} is more than {_units_text(most, places)} either way")
    return -units if minus else units


def _units_text(units: int, places: int) -> str:
    return money.format_price(units) if places == PRICE_PLACES else money.format_qty(units)


def fund_args(request: Mapping[str, Any]) -> tuple[str, int, int]:
    """(account, USD cents, BTC satoshis) of a ``fund``: a trader's name; either amount may be absent (0)."""
    account = request.get("account")
    if not is_trader_name(account):
        raise InvalidRequest(f"account must be the trader to fund: {TRADER_RULE}")
    usd, btc = request.get("usd"), request.get("btc")
    return (cast(str, account), 0 if usd is None else wire_change(usd, "usd", PRICE_PLACES, MAX_FUND_USD),
            0 if btc is None else wire_change(btc, "btc", QTY_PLACES, MAX_FUND_BTC))


def fund_request(account: str, usd: Amount | None = None, btc: Amount | None = None) -> dict[str, Any]:
    """The arguments of a ``fund`` from a program's values (``Decimal`` and ``int`` too: whole units),
    as canonical decimal strings, checked as a node checks them."""
    args: dict[str, Any] = {"account": trader_name(account)}
    if usd is not None:
        args["usd"] = money.format_price(wire_change(_change_text(usd, "usd"), "usd", PRICE_PLACES, MAX_FUND_USD))
    if btc is not None:
        args["btc"] = money.format_qty(wire_change(_change_text(btc, "btc"), "btc", QTY_PLACES, MAX_FUND_BTC))
    return args


def _change_text(value: Amount, what: str) -> str:
    """A program's signed amount as plain decimal text (trailing zeros of a fraction dropped)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidAmount(f"{what} must be a decimal string, int or Decimal, not {type(value).__name__}"
                            f"{' (a float cannot hold money exactly)' if isinstance(value, float) else ''}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidAmount(f"{what} must be a finite number")
    if isinstance(value, int) and value.bit_length() > 128:
        raise InvalidAmount(f"{what} is far too large")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def balance_args(request: Mapping[str, Any]) -> str | None:
    """The ``account`` of a ``balance``: a trader's name, or None (the asking trader's own)."""
    if "account" not in request:
        return None
    account = request["account"]
    if not is_trader_name(account):
        raise InvalidRequest(f"account must be a trader: {TRADER_RULE}")
    return cast(str, account)  # is_trader_name: a str


def balance_request(account: str | None = None) -> dict[str, Any]:
    """The arguments of a ``balance`` from a program's values, checked as a node checks them."""
    return {} if account is None else {"account": trader_name(account)}


def parse_balance(value: Any) -> BalanceView:
    """The result of ``fund`` or ``balance``: every amount canonical and not negative, and each
    currency's ``available`` exactly its ``total`` less ``reserved``."""
    result = _map(value, "balance")
    trader = result.get("trader")
    if type(trader) is not str or not trader:
        raise DecodeError("a balance names its trader")
    return {"trader": trader, "usd": _holding(result.get("usd"), "usd", PRICE_PLACES),
            "btc": _holding(result.get("btc"), "btc", QTY_PLACES)}


def _holding(value: Any, what: str, places: int) -> Holding:
    held = _map(value, f"balance's {what}")
    units = {}
    for key in ("total", "reserved", "available"):
        text = held.get(key)
        try:
            amount = wire_change(text, what, places, 2**63)
        except InvalidAmount:
            amount = -1
        if amount < 0 or _units_text(amount, places) != text:
            raise DecodeError(f"balance's {what} {key} must be a decimal string like {_units_text(1, places)}, "
                              f"got {wire.brief(text, 40)}")
        units[key] = amount
    if units["available"] != units["total"] - units["reserved"]:
        raise DecodeError(f"balance's {what}: available is not total less reserved")
    return {"total": held["total"], "reserved": held["reserved"], "available": held["available"]}


def parse_credit(value: Any) -> CreditView:
    """The result of ``credit`` (and of ``set_credit``, and ``settle`` after its ``settled``), checked."""
    result = _map(value, "credit result")
    default = result.get("default")
    desks = _map(result.get("desks"), "credit desks")
    view: CreditView = {"default": None if default is None else _credit_limits(default, "default"), "desks": {}}
    for desk, raw in desks.items():
        wire.need_node_id(desk, "credit desk")
        limits = _credit_limits(raw, desk)
        item = _map(raw, desk)
        view["desks"][desk] = {**limits, "exposure": _usd_amount(item.get("exposure"), "exposure"),
                               "pending": _usd_amount(item.get("pending"), "pending"),
                               "today": _usd_amount(item.get("today"), "today"),
                               "room": _optional_usd(item, "room")}
    return view


def parse_settled(value: Any) -> tuple[str, CreditView]:
    """The result of ``settle``: (USD marked settled, the credit after)."""
    return _usd_amount(_map(value, "settle result").get("settled"), "settled"), parse_credit(value)


def _credit_limits(value: Any, what: str) -> CreditLimits:
    item = _map(value, what)
    return {"limit": _optional_usd(item, "limit"), "daily": _optional_usd(item, "daily")}


def _optional_usd(item: Mapping[str, Any], key: str) -> str | None:
    if key not in item:
        raise DecodeError(f"credit has no {key}")
    return None if item[key] is None else _usd_amount(item[key], key)


def _usd_amount(value: Any, what: str) -> str:
    """A USD amount exactly as a node writes it: 2 decimals, 0 allowed."""
    try:
        if type(value) is str and money.format_price(usd_field(value, what)) == value:
            return value
    except InvalidAmount:
        pass
    raise DecodeError(f"{what} must be a decimal string of USD like 0.00, got {wire.brief(value, 40)}")
