"""Trader balances: what each funded trader of this node holds, and what its orders commit.

Node-local, like the traders themselves (:mod:`zmqex.core.traders`): trader
names never go into an event, so no other node knows a balance.  Only the
operator's fundings are kept (:class:`~zmqex.core.outputs.Funding`, a
promise); everything else is computed from them and the ledger, so a restart
rebuilds it (:meth:`Balances.recount`).

**Accounts.**  A trader has an account once the operator funds it (even with
0).  Per account, USD cents and BTC satoshis, each with a ``total`` and a
``reserved`` part; ``available = total - reserved`` is never negative::

    total    = funded + filled + traded
    reserved = the sum of the account's reservations

``funded`` is the sum of its fundings, ``filled`` what the fills of its own
orders moved (buyer: ``-notional(price, qty)`` USD, ``+qty`` BTC; seller: the
opposite; :func:`zmqex.core.money.notional` rounds down, and both sides move
that same number), ``traded`` what trades outside the book moved (told by
:meth:`Balances.traded`).  A trader without an account is not checked at all
(the exchange behaves as if balances did not exist), unless
``require_funding``: then it may not place.

**Which orders count.**  Own orders of a trader with an account, placed after
the account opened (the order's sequence number is above ``opened``, this
node's own event count when the first funding was made).  An account cannot
open while its trader has open orders (they were never checked), so every open
order of an account's trader counts; orders that closed before are history,
and a restart leaves their fills out by the same rule.

**What an order reserves.**  Its *exposure*: the most of it that can still
fill.  That is its open quantity while it is open, and, once cancelled, what
its takes in flight and its holds may still bring (a cancel stops new
promises, not those made; :mod:`zmqex.core.takes` counts them): always
``max(open, reserved)``, since ``filled + reserved <= qty``.  A buy reserves
``notional(price, exposure)`` USD, a sell ``exposure`` satoshis.  A market
order has the price its protection band gave it.  Exposure never goes up, so
only a placement needs a check.

**Why a fill never makes available negative.**  A fill of ``q`` at ``p`` of a
buy order with limit ``L`` and exposure ``E`` lowers its exposure to at most
``E - q`` (its open quantity, or the take or hold it settles, goes down by
``q``) and takes ``notional(p, q)`` from the total.  The fill's price is the
maker's, and the ledger fills a taker only at a price within its limit
(``crosses``), so ``p <= L`` and::

    notional(p, q) + notional(L, E - q) <= notional(L, q) + notional(L, E - q)
                                        <= notional(L, E)

the last because ``floor(a) + floor(b) <= floor(a + b)``.  So the total falls
by no more than the reservation does.  A sell's exposure falls by exactly the
``q`` satoshis its total loses.  What a trade gains (USD for a sell, BTC for a
buy) only adds.  ``tests/test_balances.py`` checks both inequalities with
hypothesis.

**Reservations beyond orders.**  :meth:`reserve`, :meth:`release`,
:meth:`check` and :meth:`traded` are the same mechanism for any key (a request
id, say): orders are kept under their order ids, and a key that is an order's
cannot be taken by another reservation.  Only fundings are persisted here:
whoever reserves or trades under a key of its own calls the same methods
again when it restores its own records.

Invariants (``_check``): recomputed from scratch (the fundings, the ledger's
fills and orders, the takes and holds) every total and reservation is what is
kept; every reservation belongs to an account; reserved and available are
never negative.

Costs: O(1) per placement, fill, cancel and reservation change (nothing at
all while no trader has an account); ``recount`` and ``_check`` are
O(own orders + their fills).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from zmqex.core import money
from zmqex.core.events import Fill, Side
from zmqex.core.ledger import Ledger, OrderState
from zmqex.core.money import notional
from zmqex.core.outputs import Funding
from zmqex.core.takes import Reservations
from zmqex.core.traders import Traders
from zmqex.errors import InsufficientBalance, InvalidAmount, InvalidRequest

#: Most an account may be funded to: ten trillion USD, in cents ...
MAX_USD: Final = 10**15
#: ... and every bitcoin there will ever be, in satoshis.
MAX_BTC: Final = money.MAX_QTY

_BUY: Final = Side.BUY  # read once: attribute lookups on enum classes are slow (Final: see core/tif.py)


@dataclass(frozen=True, slots=True)
class Balance:
    """One account as its trader sees it: integer cents and satoshis."""

    trader: str
    usd_total: int
    usd_reserved: int
    btc_total: int
    btc_reserved: int

    @property
    def usd_available(self) -> int:
        return self.usd_total - self.usd_reserved

    @property
    def btc_available(self) -> int:
        return self.btc_total - self.btc_reserved


class Account:
    """One trader's money, in its parts (see the module docstring)."""

    __slots__ = ("trader", "opened", "funded_usd", "funded_btc", "filled_usd", "filled_btc", "traded_usd",
                 "traded_btc", "reserved_usd", "reserved_btc")

    def __init__(self, trader: str, opened: int) -> None:
        self.trader = trader
        self.opened = opened  # own orders with a higher sequence number count
        self.funded_usd = 0
        self.funded_btc = 0
        self.filled_usd = 0
        self.filled_btc = 0
        self.traded_usd = 0
        self.traded_btc = 0
        self.reserved_usd = 0
        self.reserved_btc = 0

    @property
    def usd(self) -> int:
        """Total USD cents."""
        return self.funded_usd + self.filled_usd + self.traded_usd

    @property
    def btc(self) -> int:
        """Total BTC satoshis."""
        return self.funded_btc + self.filled_btc + self.traded_btc

    def view(self) -> Balance:
        return Balance(self.trader, self.usd, self.reserved_usd, self.btc, self.reserved_btc)


class Reserve:
    """What one key (an own order's id, or a caller's) holds back of ``trader``'s account."""

    __slots__ = ("trader", "side", "price", "qty", "usd", "btc", "order")

    def __init__(self, trader: str, side: Side, price: int | None, qty: int, order: bool) -> None:
        self.trader = trader
        self.side = side
        self.price = price
        self.qty = qty
        self.usd, self.btc = commits(side, price, qty)
        self.order = order  # an own order's: kept by the replica, recomputed from the ledger

    def __repr__(self) -> str:
        return f"Reserve({self.trader} {self.side.value} {self.qty}@{self.price} usd={self.usd} btc={self.btc})"


def commits(side: Side, price: int | None, qty: int) -> tuple[int, int]:
    """(USD cents, BTC satoshis) that ``qty`` on ``side`` at ``price`` (cents, a limit) commits. O(1)."""
    if side is _BUY:
        if price is None:  # place gives every order that does not rest the edge of its band
            raise InsufficientBalance("a buy without a price commits no known amount: give it a limit")
        return notional(price, qty), 0
    return 0, qty


class Balances:
    """The accounts of this node's traders, and what reserves them (see the module docstring)."""

    def __init__(self, node_id: str, traders: Traders, reservations: Reservations,
                 require_funding: bool = False) -> None:
        self._id = node_id
        self._traders = traders  # read only: whose each own order is
        self._reservations = reservations  # read only: what a cancelled order may still fill
        self.require_funding = require_funding  # a trader without an account may not place
        self._accounts: dict[str, Account] = {}
        self._reserves: dict[str, Reserve] = {}  # key (an own order id, or a caller's) -> what it holds

    # --- reading --------------------------------------------------------------------------

    @property
    def traders(self) -> list[str]:
        """The traders with an account, in the order their accounts opened."""
        return list(self._accounts)

    def has_account(self, trader: str) -> bool:
        return trader in self._accounts

    def balance(self, trader: str) -> Balance:
        """``trader``'s account now; InvalidRequest if it has none. O(1)."""
        account = self._accounts.get(trader)
        if account is None:
            raise InvalidRequest(f"{_shown(trader)} has no account at this node: an operator opens one by "
                                 "funding it (fund)")
        return account.view()

    def reserved(self, key: str) -> tuple[int, int]:
        """(USD cents, BTC satoshis) that ``key`` holds back; (0, 0) if nothing."""
        reserve = self._reserves.get(key)
        return (0, 0) if reserve is None else (reserve.usd, reserve.btc)

    # --- the operator --------------------------------------------------------------------------

    def fund(self, trader: str, usd: object, btc: object, ledger: Ledger, opened: int) -> Funding:
        """Move ``usd`` cents and ``btc`` satoshis into ``trader``'s account (negative: out of it).

        The first funding opens the account (with 0 it opens it empty), under
        ``opened``, this node's own event count now.  Returns the record to
        persist, as a promise, before anyone is told.  Raises, changing nothing:
        InvalidAmount (not an int, beyond the bounds), InvalidRequest (no name; an
        account for a trader with open orders, which were never checked),
        InsufficientBalance (a withdrawal beyond what is available). O(1).
        """
        usd, btc = _amount(usd, "usd", MAX_USD), _amount(btc, "btc", MAX_BTC)
        if type(trader) is not str or not trader:
            raise InvalidRequest("fund needs the name of a trader of this node")
        account = self._accounts.get(trader)
        if account is None:
            held = self._traders.open_orders(ledger, trader)
            if held:
                raise InvalidRequest(f"{_shown(trader)} has {held} open orders placed before it had an account, "
                                     "which nothing checked: cancel them, then fund it")
            account = Account(trader, opened)
        for what, change, total, reserved, most, form in (
                ("USD", usd, account.usd, account.reserved_usd, MAX_USD, money.format_price),
                ("BTC", btc, account.btc, account.reserved_btc, MAX_BTC, money.format_qty)):
            if change < 0 and total - reserved + change < 0:
                raise InsufficientBalance(f"a withdrawal of {form(-change)} {what} from {_shown(trader)}, which has "
                                          f"{form(total - reserved)} {what} available")
            if change > 0 and total + change > most:
                raise InvalidAmount(f"{_shown(trader)} would hold more than {form(most)} {what}")
        account.funded_usd += usd
        account.funded_btc += btc
        self._accounts[trader] = account
        return Funding(trader, usd, btc, account.opened)

    def restore(self, fundings: Iterable[Funding]) -> None:
        """The accounts as the persisted fundings left them (``recount`` then adds the ledger's part)."""
        for record in fundings:
            account = self._accounts.get(record.trader)
            if account is None:
                account = self._accounts[record.trader] = Account(record.trader, record.opened)
            account.opened = min(account.opened, record.opened)
            account.funded_usd += record.usd_cents
            account.funded_btc += record.btc_sats

    # --- reservations and trades of any key (the interface beyond orders) -------------------------

    def check(self, trader: str, side: Side, price: int | None, qty: int, freeing: str | None = None) -> None:
        """Raise InsufficientBalance unless ``trader`` can commit ``qty`` on ``side`` at ``price`` now.

        ``freeing``: a key of ``trader``'s whose reservation the new one replaces
        (an amended order's), counted as available.  A trader without an account
        passes, unless ``require_funding``.  Changes nothing. O(1).
        """
        account = self._accounts.get(trader)
        if account is None:
            if self.require_funding:
                raise InsufficientBalance(f"{_shown(trader)} has no account at this node, and this node trades "
                                          "only for funded traders: an operator funds it first")
            return
        usd, btc = commits(side, price, qty)
        free_usd, free_btc = account.usd - account.reserved_usd, account.btc - account.reserved_btc
        old = None if freeing is None else self._reserves.get(freeing)
        if old is not None and old.trader == trader:
            free_usd += old.usd
            free_btc += old.btc
        if usd > free_usd:
            raise InsufficientBalance(f"a buy of {money.format_qty(qty)} BTC at {money.format_price(price or 0)} "
                                      f"needs {money.format_price(usd)} USD; {money.format_price(free_usd)} available")
        if btc > free_btc:
            raise InsufficientBalance(f"a sell of {money.format_qty(qty)} BTC needs {money.format_qty(btc)} BTC; "
                                      f"{money.format_qty(free_btc)} available")

    def reserve(self, key: str, trader: str, side: Side, price: int | None, qty: int) -> None:
        """Hold back what ``qty`` on ``side`` at ``price`` commits of ``trader``'s account, under ``key``.

        Replaces what ``key`` held (which counts as available for it).  Raises
        InsufficientBalance when it does not fit, changing nothing; ValueError for
        a key that is an own order's (a caller's bug).  A trader without an
        account holds nothing (and passes, unless ``require_funding``). O(1).
        """
        old = self._reserves.get(key)
        if old is not None and old.order:
            raise ValueError(f"key {key} is an own order's reservation")
        money.check_qty(qty)
        if price is not None:
            money.check_price(price)
        self.check(trader, side, price, qty, key)
        if trader in self._accounts:
            self._put(key, Reserve(trader, side, price, qty, False))
        else:
            self._drop(key)

    def release(self, key: str) -> None:
        """Let go of what ``key`` holds, if anything (a key of an own order: ValueError). O(1)."""
        old = self._reserves.get(key)
        if old is not None and old.order:
            raise ValueError(f"key {key} is an own order's reservation")
        self._drop(key)

    def traded(self, trader: str, side: Side, price: int, qty: int, key: str | None = None) -> None:
        """``trader`` bought (``side`` buy) or sold ``qty`` satoshis at ``price`` outside the book.

        Moves its total as a fill would; what ``key`` (if given: ``trader``'s
        reservation for this trade) holds goes down by ``qty`` first, and is let go
        at 0.  Raises InsufficientBalance, changing nothing, if available would go
        negative (reserve first).  A trader without an account: nothing. O(1).
        """
        money.check_qty(qty)
        money.check_price(price)
        account = self._accounts.get(trader)
        if account is None:
            return
        usd, btc = _moved(side, price, qty)
        old = None if key is None else self._reserves.get(key)
        if old is not None and (old.order or old.trader != trader or old.side is not side):
            raise ValueError(f"key {key} is not a reservation of {trader} to {side.value}")
        left = None if old is None or old.qty <= qty else Reserve(trader, side, old.price, old.qty - qty, False)
        freed_usd = 0 if old is None else old.usd - (0 if left is None else left.usd)
        freed_btc = 0 if old is None else old.btc - (0 if left is None else left.btc)
        if (account.usd + usd - account.reserved_usd + freed_usd < 0
                or account.btc + btc - account.reserved_btc + freed_btc < 0):
            raise InsufficientBalance(f"{_shown(trader)} cannot afford to {side.value} {money.format_qty(qty)} BTC "
                                      f"at {money.format_price(price)}: reserve it first")
        if key is not None:
            if left is None:
                self._drop(key)
            else:
                self._put(key, left)
        account.traded_usd += usd
        account.traded_btc += btc

    # --- own orders (the replica calls these) -----------------------------------------------------

    def order_changed(self, oid: str, ledger: Ledger) -> None:
        """Own order ``oid`` was placed, or what of it may still fill went down: reserve its exposure. O(1)."""
        if not self._accounts:
            return
        state = ledger.orders.get(oid)
        if state is not None:
            account = self._account_of(state)
            if account is not None:
                self._reserve_order(state, account)

    def on_fill(self, fill: Fill, ledger: Ledger) -> None:
        """A fill was applied (and the taker desk counted it): move the totals of its own orders' traders.

        Call it after the takes it settles count it filled, and before anything
        acts on that: each of its orders' reservations first shrinks by at least
        what the fill takes from the total (see the module docstring). O(1).
        """
        if not self._accounts:
            return
        for oid in (fill.maker, fill.taker):  # both, when two of our traders traded with each other
            state = ledger.orders[oid]
            account = self._account_of(state)
            if account is not None:
                self._reserve_order(state, account)
                usd, btc = _moved(state.side, fill.price, fill.qty)
                account.filled_usd += usd
                account.filled_btc += btc

    def recount(self, ledger: Ledger) -> None:
        """Rebuild every order's part from ``ledger`` (after a restore, a snapshot, a repair). O(own orders)."""
        filled, orders = self._tally(ledger)
        for key in [k for k, r in self._reserves.items() if r.order]:
            self._drop(key)
        for trader, account in self._accounts.items():
            account.filled_usd, account.filled_btc = filled.get(trader, (0, 0))
        for oid, reserve in orders.items():
            self._put(oid, reserve)

    # --- inside ------------------------------------------------------------------------------------

    def _account_of(self, state: OrderState) -> Account | None:
        """The account an order counts for: an own order of a funded trader, placed since it opened."""
        if state.owner != self._id:
            return None
        trader = self._traders.of.get(state.id)
        account = None if trader is None else self._accounts.get(trader)
        if account is None or state.event.seq <= account.opened:
            return None
        return account

    def _exposure(self, state: OrderState) -> int:
        return max(state.open, self._reservations.reserved(state.id))

    def _reserve_order(self, state: OrderState, account: Account) -> None:
        exposure = self._exposure(state)
        if exposure:
            self._put(state.id, Reserve(account.trader, state.side, state.price, exposure, True))
        else:
            self._drop(state.id)

    def _put(self, key: str, reserve: Reserve) -> None:
        self._drop(key)
        account = self._accounts[reserve.trader]
        account.reserved_usd += reserve.usd
        account.reserved_btc += reserve.btc
        self._reserves[key] = reserve

    def _drop(self, key: str) -> None:
        old = self._reserves.pop(key, None)
        if old is not None:
            account = self._accounts[old.trader]
            account.reserved_usd -= old.usd
            account.reserved_btc -= old.btc

    def _tally(self, ledger: Ledger) -> tuple[dict[str, tuple[int, int]], dict[str, Reserve]]:
        """From scratch: what fills moved per trader, and what each counted own order reserves."""
        filled: dict[str, tuple[int, int]] = {}
        orders: dict[str, Reserve] = {}
        if not self._accounts:
            return filled, orders
        for oid in self._traders.of:
            state = ledger.orders.get(oid)
            account = None if state is None else self._account_of(state)
            if state is None or account is None:
                continue
            usd, btc = filled.get(account.trader, (0, 0))
            for event in ledger.fills_of.get(oid, ()):
                fill = event.body
                assert isinstance(fill, Fill)
                moved_usd, moved_btc = _moved(state.side, fill.price, fill.qty)
                usd, btc = usd + moved_usd, btc + moved_btc
            filled[account.trader] = (usd, btc)
            exposure = self._exposure(state)
            if exposure:
                orders[oid] = Reserve(account.trader, state.side, state.price, exposure, True)
        return filled, orders

    # --- invariants -----------------------------------------------------------------------------

    def _check(self, ledger: Ledger) -> None:
        filled, orders = self._tally(ledger)
        reserved: dict[str, tuple[int, int]] = {}
        for key, reserve in self._reserves.items():
            assert reserve.trader in self._accounts, f"{key} reserves for {reserve.trader}, who has no account"
            assert (reserve.usd, reserve.btc) == commits(reserve.side, reserve.price, reserve.qty) and reserve.qty > 0
            if reserve.order:
                expected = orders.get(key)
                assert expected is not None and (expected.trader, expected.usd, expected.btc) == (
                    reserve.trader, reserve.usd, reserve.btc), f"order {key} reserves {reserve}, not {expected}"
            usd, btc = reserved.get(reserve.trader, (0, 0))
            reserved[reserve.trader] = (usd + reserve.usd, btc + reserve.btc)
        missing = set(orders) - {k for k, r in self._reserves.items() if r.order}
        assert not missing, f"own orders with nothing reserved: {sorted(missing)[:5]}"
        for oid in self._traders.of:  # each counted order covers all it may still fill: what rests, is asked, held
            state = ledger.orders.get(oid)
            if state is not None and self._account_of(state) is not None:
                kept = self._reserves.get(oid)
                qty = 0 if kept is None else kept.qty
                assert qty >= state.open and qty >= self._reservations.reserved(oid), \
                    f"{oid} reserves {qty}: {state.open} open, {self._reservations.reserved(oid)} asked or held"
        for trader, account in self._accounts.items():
            assert account.trader == trader
            assert (account.filled_usd, account.filled_btc) == filled.get(trader, (0, 0)), \
                f"{trader}'s fills moved {(account.filled_usd, account.filled_btc)}, the ledger says " \
                f"{filled.get(trader, (0, 0))}"
            assert (account.reserved_usd, account.reserved_btc) == reserved.get(trader, (0, 0)), \
                f"{trader}'s reserved totals drifted"
            assert account.reserved_usd >= 0 and account.reserved_btc >= 0, f"{trader} reserves less than nothing"
            assert account.usd >= account.reserved_usd, f"{trader} has {account.usd - account.reserved_usd} USD " \
                                                        "cents available: less than nothing"
            assert account.btc >= account.reserved_btc, f"{trader} has {account.btc - account.reserved_btc} " \
                                                        "satoshis available: less than nothing"


def _moved(side: Side, price: int, qty: int) -> tuple[int, int]:
    """(USD cents, BTC satoshis) a trade of ``qty`` at ``price`` moves into the account of its ``side``."""
    cents = notional(price, qty)
    return (-cents, qty) if side is _BUY else (cents, -qty)


def _amount(value: object, what: str, most: int) -> int:
    """A signed change of an account, already in integer units; InvalidAmount if not one."""
    if type(value) is not int:
        raise InvalidAmount(f"{what} must be an integer number of "
                            f"{'cents' if what == 'usd' else 'satoshis'}, not {type(value).__name__}")
    if not -most <= value <= most:
        raise InvalidAmount(f"{what} {value} is beyond {most} in size")
    return value


def _shown(trader: str) -> str:
    """A trader as a message to it names it (a connection's own name is long and says little)."""
    if not trader:
        return "a trader without a name"
    return "this connection" if trader.startswith("conn-") else f"trader {trader}"
