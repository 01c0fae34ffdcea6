"""A naive single-threaded price-time matcher: the reference semantics of the book."""

from __future__ import annotations

from zmqex.core.events import Side, Tif


class NaiveMatcher:
    """Price-time matching in the plainest O(n) way: the reference semantics."""

    def __init__(self) -> None:
        self.resting: list[dict] = []  # in arrival order
        self.fills: list[tuple[str, str, int, int]] = []  # (maker, taker, price, qty)
        self.filled: dict[str, int] = {}

    @staticmethod
    def _crosses(side: Side, limit: int | None, price: int) -> bool:
        return limit is None or (price <= limit if side is Side.BUY else price >= limit)

    def place(self, oid: str, side: Side, qty: int, price: int | None, tif: Tif, trader: str | None = None) -> bool:
        """Match an order; False if it is refused (a post-only that would cross, a market order with nothing
        to take from).  Orders of one ``trader`` never trade with each other: the incoming one stops there
        and its remainder is cancelled (self-trade prevention, cancel newest)."""
        if price is None and not any(o["side"] is not side for o in self.resting):
            return False
        makers = [o for o in self.resting if o["side"] is not side and self._crosses(side, price, o["price"])]
        if tif is Tif.POST_ONLY and makers:
            return False
        # best price first, then arrival (the list is in arrival order and sort is stable)
        makers.sort(key=lambda o: o["price"] if side is Side.BUY else -o["price"])
        if tif is Tif.FOK:  # all of it, from the makers before any of its own trader's, or nothing
            mine = next((i for i, o in enumerate(makers) if trader is not None and o["trader"] == trader), None)
            if sum(o["open"] for o in makers[:mine]) < qty:
                return True  # killed
        left = qty
        for maker in makers:
            if left == 0:
                break
            if trader is not None and maker["trader"] == trader:
                left = 0  # self-trade prevention: the incoming order's remainder is cancelled
                break
            traded = min(left, maker["open"])
            maker["open"] -= traded
            left -= traded
            self.fills.append((maker["id"], oid, maker["price"], traded))
            self.filled[maker["id"]] = self.filled.get(maker["id"], 0) + traded
            self.filled[oid] = self.filled.get(oid, 0) + traded
        self.resting = [o for o in self.resting if o["open"] > 0]
        if left and price is not None and tif not in (Tif.IOC, Tif.FOK):
            self.resting.append({"id": oid, "side": side, "price": price, "open": left, "trader": trader})
        return True

    def cancel(self, oid: str) -> None:
        self.resting = [o for o in self.resting if o["id"] != oid]

    def depth(self, side: Side) -> list[tuple[int, int, int]]:
        levels: dict[int, list[int]] = {}
        for o in self.resting:
            if o["side"] is side:
                level = levels.setdefault(o["price"], [0, 0])
                level[0] += o["open"]
                level[1] += 1
        ordered = sorted(levels, reverse=side is Side.BUY)
        return [(p, levels[p][0], levels[p][1]) for p in ordered]
