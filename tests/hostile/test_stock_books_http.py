"""The books of stock over HTTP (issue 10, Done means: "Flash sales, orders, refunds and restocks keep
on_hand = available + reserved (and the flash hold) at every location, checked after a mixed run of
300 random operations over HTTP"; docs/flash-sales.md, "Stock" and "Cancelling a sale").

A seeded `random.Random` (the seed is printed; `BOOKS_SEED=<n>` replays a run) draws 300 operations
against the hostile tier's stack: orders (delivery, pickup at S001, ship-from-store), payments (the
local `/dev/pay` or the signed webhook), customer cancels, expiry of every unpaid order (the stack's
sweeper on a clock an hour ahead: the stack's payment window is an hour, so "one" cannot expire
alone), ready + hand-over of pickups, refunds approved with and without restock or rejected, flash
sales held at WH or S001, purchases in them, their cancellation, and restocks (a count of what the
stock route shows plus n). The test keeps its own books from the answers it got, never from the
stock routes, and then (once the reconciler has settled cancelled sales: polled) for every SKU and
location used checks, through `GET /admin/stock/{sku}`:

- on_hand = available + reserved;
- on_hand = seeded + restocked - units paid from there (stock is committed when an order is paid)
  + units of refunds approved with restock (to the order's location, a flash order's to its sale's);
- reserved = units of unpaid live orders there + the holds of live flash sales there (their
  quantity less the units paid out of them); a cancelled sale holds only its unpaid orders' units.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.web.auth import Role, issue_token
from tests.e2e.http_api import HttpApi
from tests.hostile.flows import DELIVERY, PICKUP, notify, product

OPERATIONS = int(os.environ.get("BOOKS_OPERATIONS") or 300)  # fewer to try a change quickly
SEEDED = {"WH": 60, "S001": 40}
LOCATIONS = tuple(SEEDED)
SETTLE_DEADLINE_S = 90.0  # the reconciler runs every second on this stack; a loaded machine is slower
WEIGHTS = {
    "order": 22,
    "pay": 18,
    "cancel_order": 5,
    "expire": 1,
    "hand_over": 6,
    "ship": 4,
    "refund": 10,
    "create_sale": 4,
    "buy_flash": 16,
    "cancel_sale": 3,
    "restock": 6,
}
SHIP_FROM_STORE = {"type": "ship_from_store", "store_id": "S001", "address": DELIVERY["address"]}


@dataclass
class KeptOrder:
    order_id: str
    token: str
    sku: str
    qty: int
    stock_at: str  # where its units are reserved and committed: the order's location, or its sale's
    kind: str
    status: str = "PENDING_PAYMENT"
    total_fen: int = 0
    refundable: int = 0
    sale_id: str | None = None


@dataclass
class KeptSale:
    sale_id: str
    sku: str
    location: str
    quantity: int
    cancelled: bool = False
    paid: int = 0


@dataclass
class Books:
    """What the answers said: the test's own ledger of every unit."""

    restocked: Counter[tuple[str, str]] = field(default_factory=Counter)
    paid: Counter[tuple[str, str]] = field(default_factory=Counter)
    returned: Counter[tuple[str, str]] = field(default_factory=Counter)
    orders: dict[str, KeptOrder] = field(default_factory=dict)
    sales: dict[str, KeptSale] = field(default_factory=dict)
    done: Counter[str] = field(default_factory=Counter)

    def on_hand(self, sku: str, location: str) -> int:
        key = (sku, location)
        return SEEDED[location] + self.restocked[key] - self.paid[key] + self.returned[key]

    def reserved(self, sku: str, location: str) -> int:
        pending = sum(
            o.qty
            for o in self.orders.values()
            if o.status == "PENDING_PAYMENT" and (o.sku, o.stock_at) == (sku, location)
        )
        held = sum(
            s.quantity - s.paid
            for s in self.sales.values()
            if not s.cancelled and (s.sku, s.location) == (sku, location)
        )
        # A live sale's hold already counts its unpaid orders' units: they came off its shards.
        in_live_sales = sum(
            o.qty
            for o in self.orders.values()
            if o.status == "PENDING_PAYMENT" and o.sale_id and not self.sales[o.sale_id].cancelled
            and (o.sku, o.stock_at) == (sku, location)
        )  # fmt: skip
        return pending - in_live_sales + held


class Run:
    def __init__(self, api: HttpApi, tokens: dict[str, str], stack: Any, rng: random.Random) -> None:
        self.api, self.tokens, self.stack, self.rng = api, tokens, stack, rng
        self.books = Books()
        self.admin = tokens["merchant_admin"]
        jwt_secret = stack.environment["JWT_SECRET"]
        tag = uuid.uuid4().hex[:6]
        self.customers = [issue_token(jwt_secret, f"books-{tag}-{n}", Role.CUSTOMER) for n in range(6)]
        self.skus = [product(self.api, self.admin, price_fen=2500, stock=dict(SEEDED)) for _ in range(2)]

    # -- the operations --------------------------------------------------------------------------
    def order(self) -> None:
        sku, qty = self.rng.choice(self.skus), self.rng.randint(1, 3)
        kind, fulfilment = self.rng.choice(
            [("delivery", DELIVERY), ("pickup", PICKUP), ("ship_from_store", SHIP_FROM_STORE)]
        )
        token = self.rng.choice(self.customers)
        placed = self.api.post(
            "/orders", token=token, json={"lines": [{"sku": sku, "qty": qty}], "fulfilment": fulfilment}
        )
        if placed.status_code == 409:
            assert placed.json()["code"] == "OUT_OF_STOCK", placed.text
            return
        assert placed.status_code == 201, placed.text
        body = placed.json()
        self.books.orders[body["order_id"]] = KeptOrder(
            body["order_id"], token, sku, qty, body["location"], kind, total_fen=body["total_fen"]
        )

    def _pick(self, *statuses: str, kinds: tuple[str, ...] = ()) -> KeptOrder | None:
        found = [o for o in self.books.orders.values() if o.status in statuses and (not kinds or o.kind in kinds)]
        return self.rng.choice(found) if found else None

    def pay(self) -> None:
        kept = self._pick("PENDING_PAYMENT")
        if kept is None:
            return
        if self.rng.random() < 0.5:
            answer = self.api.post(f"/dev/pay/{kept.order_id}")
        else:
            notice = {
                "order_id": kept.order_id,
                "transaction_id": f"wx-{uuid.uuid4().hex[:16]}",
                "amount_fen": kept.total_fen,
                "paid_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            answer = notify(self.api, self.stack.environment["PAYMENT_WEBHOOK_SECRET"], notice)
        assert answer.status_code == 200, answer.text
        kept.status, kept.refundable = "PAID", kept.qty
        self.books.paid[(kept.sku, kept.stock_at)] += kept.qty
        if kept.sale_id:
            self.books.sales[kept.sale_id].paid += kept.qty

    def cancel_order(self) -> None:
        kept = self._pick("PENDING_PAYMENT")
        if kept is None:
            return
        answer = self.api.post(f"/orders/{kept.order_id}/cancel", token=kept.token)
        assert (answer.status_code, answer.json()["status"]) == (200, "CANCELLED"), answer.text
        kept.status = "CANCELLED"

    def expire(self) -> None:
        pending = [o for o in self.books.orders.values() if o.status == "PENDING_PAYMENT"]
        expired = self.stack.expire_unpaid_orders()
        assert expired >= len(pending), (expired, len(pending))  # other tests' unpaid orders expire too
        for kept in pending:
            kept.status = "CANCELLED"

    def hand_over(self) -> None:
        kept = self._pick("PAID", "FULFILLING", kinds=("pickup",))
        if kept is None:
            return
        path = f"/orders/{kept.order_id}"
        if kept.status == "PAID":
            ready = self.api.post(f"{path}/ready-for-pickup", token=self.tokens["store_staff"])
            assert ready.status_code == 200, ready.text
            kept.status = "FULFILLING"
            if self.rng.random() < 0.3:
                return  # collected later, or refunded while it waits
        code = self.api.get(path, token=kept.token).json()["pickup_code"]
        handed = self.api.post(f"{path}/hand-over", token=self.tokens["store_staff"], json={"pickup_code": code})
        assert (handed.status_code, handed.json()["status"]) == (200, "COMPLETED"), handed.text
        kept.status = "COMPLETED"

    def ship(self) -> None:
        kept = self._pick("PAID", kinds=("delivery", "ship_from_store"))
        if kept is None:
            return
        shipped = self.api.post(
            f"/orders/{kept.order_id}/ship",
            token=self.admin,
            json={"tracking_number": f"SF{self.rng.randrange(10**9)}"},
        )
        assert shipped.status_code == 200, shipped.text
        kept.status = shipped.json()["status"]

    def refund(self) -> None:
        found = [o for o in self.books.orders.values() if o.refundable > 0]
        if not found:
            return
        kept = self.rng.choice(found)
        qty = self.rng.randint(1, kept.refundable)
        asked = self.api.post(
            f"/orders/{kept.order_id}/refunds",
            token=kept.token,
            json={"lines": [{"sku": kept.sku, "qty": qty}], "reason": "books"},
            headers={"Idempotency-Key": f"books-{uuid.uuid4().hex[:12]}"},
        )
        assert asked.status_code == 201, asked.text
        approve, restock = self.rng.random() < 0.8, self.rng.random() < 0.5
        decided = self.api.post(
            f"/admin/orders/{kept.order_id}/refunds/{asked.json()['refund_id']}/decision",
            token=self.admin,
            json={"approve": approve, "restock": restock},
        )
        assert decided.status_code == 200, decided.text
        if approve:
            kept.refundable -= qty
            if kept.refundable == 0:
                kept.status = "REFUNDED"  # every unit refunded: nothing to ship or hand over
            if restock:
                self.books.returned[(kept.sku, kept.stock_at)] += qty
        self.books.done[f"refund approve={approve} restock={restock and approve}"] += 1

    def create_sale(self) -> None:
        sku, location = self.rng.choice(self.skus), self.rng.choice(LOCATIONS)
        quantity = self.rng.randint(1, 8)
        now = time.time()
        created = self.api.post(
            "/admin/flash-sales",
            token=self.admin,
            json={
                "sku": sku,
                "price_fen": 900,
                "quantity": quantity,
                "per_user_limit": 2,
                "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
                "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
                "location": location,
            },
            headers={"Idempotency-Key": f"books-{uuid.uuid4().hex[:12]}"},
        )
        if created.status_code == 409:
            assert created.json()["code"] == "OUT_OF_STOCK", created.text
            return
        assert created.status_code == 201, created.text
        sale_id = created.json()["flash_sale_id"]
        self.books.sales[sale_id] = KeptSale(sale_id, sku, location, quantity)

    def buy_flash(self) -> None:
        if not self.books.sales:
            return
        sale = self.books.sales[self.rng.choice(sorted(self.books.sales))]
        token = self.rng.choice(self.customers)
        kind, fulfilment = self.rng.choice([("delivery", DELIVERY), ("pickup", PICKUP)])
        bought = self.api.post(
            f"/flash-sales/{sale.sale_id}/orders",
            token=token,
            json={"qty": 1, "fulfilment": fulfilment},
            headers={"Idempotency-Key": f"books-{uuid.uuid4().hex[:12]}"},
        )
        if sale.cancelled:
            assert (bought.status_code, bought.json()["code"]) == (409, "FLASH_SALE_CANCELLED"), bought.text
            return
        if bought.status_code in (409, 429):
            assert bought.json()["code"] in ("SOLD_OUT", "LIMIT_REACHED"), bought.text
            return
        assert bought.status_code == 201, bought.text
        body = bought.json()
        self.books.orders[body["order_id"]] = KeptOrder(
            body["order_id"], token, sale.sku, 1, sale.location, kind, total_fen=body["total_fen"], sale_id=sale.sale_id
        )

    def cancel_sale(self) -> None:
        live = sorted(s for s, kept in self.books.sales.items() if not kept.cancelled)
        if not live:
            return
        sale = self.books.sales[self.rng.choice(live)]
        answer = self.api.post(f"/admin/flash-sales/{sale.sale_id}/cancel", token=self.admin)
        assert (answer.status_code, answer.json()["status"]) == (200, "CANCELLED"), answer.text
        sale.cancelled = True
        again = self.api.post(f"/admin/flash-sales/{sale.sale_id}/cancel", token=self.admin)
        assert (again.status_code, again.json()) == (200, answer.json())

    def restock(self) -> None:
        sku, location, more = self.rng.choice(self.skus), self.rng.choice(LOCATIONS), self.rng.randint(1, 10)
        sheet = self.api.get(f"/admin/stock/{sku}", token=self.admin).json()
        on_hand = next(level["on_hand"] for level in sheet["locations"] if level["location"] == location)
        counted = self.api.put(
            f"/admin/stock/{sku}", token=self.admin, json={"location": location, "on_hand": on_hand + more}
        )
        assert counted.status_code == 200, counted.text
        self.books.restocked[(sku, location)] += more

    # -- the run and the books -------------------------------------------------------------------
    def play(self, operations: int) -> None:
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        for _ in range(operations):
            kind = self.rng.choices(kinds, weights)[0]
            getattr(self, kind)()
            self.books.done[kind] += 1

    def differences(self) -> list[str]:
        """Every (sku, location) whose stock route disagrees with the books; empty when they balance."""
        wrong = []
        for sku in self.skus:
            sheet = self.api.get(f"/admin/stock/{sku}", token=self.admin).json()
            levels = {level["location"]: level for level in sheet["locations"]}
            for location in LOCATIONS:
                level = levels[location]
                expected = (self.books.on_hand(sku, location), self.books.reserved(sku, location))
                seen = (level["on_hand"], level["reserved"])
                if level["on_hand"] != level["available"] + level["reserved"] or seen != expected:
                    wrong.append(f"{sku}@{location}: route {level}, books on_hand/reserved {expected}")
        return wrong


def test_stock_balances_after_300_random_operations(api, tokens, stack, capsys):
    seed = int(os.environ.get("BOOKS_SEED") or random.SystemRandom().randrange(10**6))
    with capsys.disabled():
        print(f"\nstock books: BOOKS_SEED={seed} ({OPERATIONS} operations)")
    run = Run(api, tokens, stack, random.Random(seed))
    started = time.monotonic()
    run.play(OPERATIONS)
    played_s = time.monotonic() - started
    # The reconciler (every second here) settles cancelled sales; poll until the books agree, or time out
    deadline, wrong = time.monotonic() + SETTLE_DEADLINE_S, run.differences()
    while wrong and time.monotonic() < deadline:
        time.sleep(1.0)
        wrong = run.differences()
    with capsys.disabled():
        print(
            f"stock books: seed {seed}: {played_s:.0f} s for {OPERATIONS} operations, "
            f"settled {time.monotonic() - started - played_s:.0f} s later; {dict(sorted(run.books.done.items()))}"
        )
    assert not wrong, f"BOOKS_SEED={seed}: " + "; ".join(wrong)
    # And the run exercised what it is about: paid units, restocked refunds, cancelled sales with orders
    books = run.books
    assert sum(books.paid.values()) and sum(books.returned.values()) and sum(books.restocked.values())
    assert any(s.cancelled for s in books.sales.values()) and any(o.sale_id for o in books.orders.values())
