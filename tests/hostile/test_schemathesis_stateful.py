"""A stateful schemathesis run over HTTP: scenarios that create something and then act on what was
created, along the `links` of docs/openapi.yaml (a listed product -> quote / order; an order ->
read, pay (/dev/pay), cancel, ship, ready, hand over, complete, refund; a refund -> its decision; a
flash sale -> buy, cancel; a coupon template -> claim, edit, issue; a claim -> redemption at a store
-> reversal; a product -> its stock; ...). Every step is checked against the document (no 5xx,
documented status, content type and body), and the run must really reach the linked operations:
it counts what was created and how many steps acted on an id an earlier step created.

Schemathesis (public API: `as_state_machine`, `before_call`, `after_call`, `get_call_kwargs`)
starts scenarios at POSTs and at GETs without path parameters, so two machines run:
- the shop: scenarios start at `GET /products` (the link carries its first product into a quote or
  an order), at creating POSTs (flash sales, coupon templates, settlements) and go from there;
- the catalogue: the same document filtered to the PUT-created resources (products, stock,
  promotions), where those PUTs start the scenarios.
Generated bodies name products, stores and windows that do not exist and are refused (404/422), so
`before_call` makes four in five positive creating bodies valid: quotes and orders for the run's own
product (stocked in the test's set-up, unless the listing's link already named it), refunds of it
(a paid order's link gives the order, not its lines), flash sales of
it that have started, coupon templates valid now. The fifth is sent as generated.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import GenerationMode

from shared.web.auth import Role, issue_token
from tests.e2e.test_schemathesis import token_for
from tests.hostile.tally import record

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
ORDER_SCENARIOS, ORDER_STEPS = 60, 16  # an order's life is long: placed, paid, refunded, decided
SALE_SCENARIOS, SALE_STEPS = 60, 12
TIME_BUDGET_S = 60  # per machine; the run stops starting scenarios after it
CATALOGUE_SCENARIOS, CATALOGUE_STEPS = 60, 8
ORDERS = [
    "listProducts", "getProduct", "quote", "placeOrder", "getOrder", "devPay", "cancelOrder", "shipOrder",
    "readyForPickup", "handOver", "resetPickupAttempts", "completeOrder", "requestRefund", "decideRefund",
    "getOrderProfitShare",
]  # fmt: skip
CATALOGUE = ["putProduct", "getProduct", "putStock", "getStock", "putPromotion", "getPromotion"]

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "with-security-parameters": False},
        # Only the document's links: the inferred ones guess from names and mostly pair unrelated ids.
        "phases": {"stateful": {"inference": {"algorithms": []}}},
        "checks": {
            # As in tests/e2e/test_schemathesis.py: a valid body can still name a missing store or an
            # order in the wrong state (404 / 409 / 422 by design); a missing method is the gateway's.
            "positive_data_acceptance": {"enabled": False},
            "unsupported_method": {"enabled": False},
        },
    }
)


def iso(offset_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


class Run:
    """What one machine sent and what it reached, from the answers themselves."""

    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()  # "METHOD /path status"
        self.linked: Counter[str] = Counter()  # the same, for steps on an id an earlier step created
        self.created: dict[str, set[str]] = {
            kind: set() for kind in ("product", "order", "refund", "sale", "template", "coupon", "redemption")
        }
        self.server_errors: list[str] = []
        self.scenarios = 0
        self.restarts = 0

    def acted_on_created(self, case: Any) -> bool:
        made = set().union(*self.created.values())
        values = list((case.path_parameters or {}).values())
        if isinstance(case.body, dict):
            values += [case.body.get("template_id"), case.body.get("code")]
        return any(isinstance(v, str) and v in made for v in values)

    def note(self, case: Any, status: int, body: Any) -> None:
        step = f"{case.operation.label} {status}"
        self.steps[step] += 1
        if self.acted_on_created(case):
            code = body.get("code") if isinstance(body, dict) and status >= 400 else None
            self.linked[f"{step} {code}" if isinstance(code, str) else step] += 1
        if status >= 500:
            self.server_errors.append(step)
        if not 200 <= status < 300 or not isinstance(body, dict):
            return
        operation = case.operation.definition.raw.get("operationId")
        kinds = {
            "putProduct": ("product", "sku"),
            "placeOrder": ("order", "order_id"),
            "buyInFlashSale": ("order", "order_id"),
            "requestRefund": ("refund", "refund_id"),
            "createFlashSale": ("sale", "flash_sale_id"),
            "createCouponTemplate": ("template", "template_id"),
            "claimCoupon": ("coupon", "code"),
            "redeemCouponOffline": ("redemption", "redemption_id"),
        }
        if operation in kinds and (status == 201 or operation != "putProduct"):
            kind, field = kinds[operation]
            if isinstance(body.get(field), str):
                self.created[kind].add(body[field])

    def count(self, operation_label: str, status: int, linked: bool = True) -> int:
        return (self.linked if linked else self.steps)[f"{operation_label} {status}"]

    def report(self, name: str) -> str:
        lines = [
            f"{name}: {self.scenarios} scenarios ({self.restarts} restarts), "
            f"{sum(self.steps.values())} requests, {len(self.server_errors)} answered 5xx, "
            f"{sum(self.linked.values())} steps on an id created earlier in the run "
            f"({len(self.linked)} distinct operation/status pairs); created: "
            + ", ".join(f"{len(ids)} {kind}" for kind, ids in self.created.items())
        ]
        lines += [f"  linked {step}: {n}" for step, n in sorted(self.linked.items())]
        return "\n".join(lines)


def only_of(lines: Any, sku: str) -> bool:
    return (
        isinstance(lines, list)
        and bool(lines)
        and all(isinstance(line, dict) and line.get("sku") == sku for line in lines)
    )


def valid_body(operation: str, body: dict[str, Any], sku: str) -> dict[str, Any] | None:
    """A body the operation accepts, for the run's product, where the generated one would be refused
    (None: keep the generated one)."""
    if operation in ("quote", "placeOrder") and not only_of(body.get("lines"), sku):
        return {"lines": [{"sku": sku, "qty": 1}], "fulfilment": {"type": "pickup", "store_id": "S001"}}
    if operation == "requestRefund" and not only_of(body.get("lines"), sku):
        return {"lines": [{"sku": sku, "qty": 1}], "reason": "不想要了"}
    if operation == "buyInFlashSale" and body.get("qty") not in (1, 2):
        # within the run's sales' limit (2, below), delivered to the customer's saved address: a
        # generated quantity is mostly above it, and a run of 36 sales once bought none (429 x 15)
        return {"qty": 1}
    if operation == "createFlashSale":
        return {
            "sku": sku,
            "price_fen": 1000,
            "quantity": 5,
            "per_user_limit": 2,
            "starts_at": iso(-60),
            "ends_at": iso(3600),
        }
    if operation == "createCouponTemplate":
        return {
            "kind": "threshold",
            "name": "满30减3",
            "amount_fen": 300,
            "threshold_fen": 3000,
            "total": 50,
            "per_user_limit": 5,
            "valid_from": iso(-3600),
            "valid_to": iso(30 * 86_400),
            "channels": ["online", "offline"],
        }
    return None


def machine(api_schema: Any, base_url: str, tokens: dict[str, str], sku: str, run: Run) -> Any:
    """The schema's state machine, with a token per operation, valid creating bodies, and counting."""
    sent = Counter[str]()

    class Workflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            run.scenarios += 1

        def before_call(self, case: Any) -> None:
            operation = case.operation.definition.raw.get("operationId")
            if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
                return
            sent[operation] += 1
            if sent[operation] % 5 == 0:
                return  # one in five as generated
            body = valid_body(operation, case.body if isinstance(case.body, dict) else {}, sku)
            if body is not None:
                case.body = body

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            record(response, generated=True)
            try:
                body = response.json()
            except ValueError:
                body = None
            run.note(case, response.status_code, body)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            # The token goes with the call, not in the case: the `ignored_auth` check then knows it is
            # a real one and probes the operation without it and with a wrong one.
            return {"base_url": base_url, "timeout": 30, "headers": token_for(case.operation, tokens)}

    return Workflow


def run_machine(workflow: Any, scenarios: int, steps: int, run: Run) -> None:
    """`scenarios` scenarios of up to `steps` steps. Hypothesis ends a run when one choice sequence
    led to a different machine the second time (a bundle empty now: the API answered otherwise);
    schemathesis's own engine ends the suite there and starts another, and so does this."""
    deadline = time.monotonic() + TIME_BUDGET_S
    while run.scenarios < scenarios and time.monotonic() < deadline:
        try:
            workflow.run(
                settings=settings(
                    workflow.TestCase.settings,
                    max_examples=scenarios - run.scenarios,
                    stateful_step_count=steps,
                    database=None,
                )
            )
        except FlakyStrategyDefinition:
            run.restarts += 1
            continue
        return


def run_tokens(stack: Any, tokens: dict[str, str]) -> dict[str, str]:
    """The tier's tokens, with a customer of this run's own (its orders, coupons and limits)."""
    customer = f"c-sf-{uuid.uuid4().hex[:8]}"
    return {**tokens, "customer": issue_token(stack.environment["JWT_SECRET"], customer, Role.CUSTOMER)}


def stocked_product(api: Any, admin: str) -> str:
    """A product stocked for every order, hold and sale the run can make (its SKU sorts early, so
    the listing's first product is often this one)."""
    sku = f"0--SF{uuid.uuid4().hex[:6].upper()}"
    assert api.put(f"/admin/products/{sku}", token=admin, json={"name": "状态茶", "price_fen": 3500}).status_code == 201
    for location in ("WH", "S001"):
        counted = api.put(f"/admin/stock/{sku}", token=admin, json={"location": location, "on_hand": 100_000})
        assert counted.status_code == 201, counted.text
    return sku


def shop_set_up(stack: Any, tokens: dict[str, str], api: Any) -> tuple[dict[str, str], str]:
    """The run's own customer (with a saved address, for flash-sale orders) and a stocked product."""
    run_as = run_tokens(stack, tokens)
    address = {"recipient": "韩梅梅", "phone": "13700000000", "city": "上海", "detail": "徐汇区 3 号"}
    assert api.put("/me/address", token=run_as["customer"], json=address).status_code == 200
    return run_as, stocked_product(api, tokens["merchant_admin"])


def test_order_scenarios_pay_refund_and_decide_what_they_placed(stack, tokens, api):
    run_as, sku = shop_set_up(stack, tokens, api)
    run = Run()
    started = time.monotonic()
    # When the order scenarios run (the listing -> quote / order -> its life), along the links
    orders = schemathesis.openapi.from_path(OPENAPI, config=CONFIG).include(operation_id=ORDERS)
    run_machine(machine(orders, stack.api_url, run_as, sku, run), ORDER_SCENARIOS, ORDER_STEPS, run)
    print(run.report(f"stateful order run ({time.monotonic() - started:.0f} s)"))
    # Then no step was answered 5xx (the checks also held every answer to the document), and what
    # was placed was acted on: orders read, paid, cancelled, refunds requested of paid orders
    assert run.server_errors == []
    assert len(run.created["order"]) >= 1
    assert run.count("POST /dev/pay/{order_id}", 200) >= 1, run.report("orders")
    assert run.count("POST /orders/{order_id}/refunds", 201) >= 1, run.report("orders")
    assert len(run.linked) >= 8, run.report("orders")


def test_sale_and_coupon_scenarios_buy_claim_and_redeem_what_they_created(stack, tokens, api):
    run_as, sku = shop_set_up(stack, tokens, api)
    run = Run()
    started = time.monotonic()
    # When the scenarios that start at flash sales, coupon templates and settlements run
    sales = schemathesis.openapi.from_path(OPENAPI, config=CONFIG).exclude(operation_id=["listProducts", *CATALOGUE])
    run_machine(machine(sales, stack.api_url, run_as, sku, run), SALE_SCENARIOS, SALE_STEPS, run)
    print(run.report(f"stateful sales run ({time.monotonic() - started:.0f} s)"))
    # Then no 5xx, and sales were bought from and templates claimed along the links
    assert run.server_errors == []
    assert len(run.created["sale"]) >= 1 and len(run.created["template"]) >= 1
    assert run.count("POST /flash-sales/{sale_id}/orders", 201) >= 1, run.report("sales")
    assert run.count("POST /coupon-templates/{template_id}/claim", 201) >= 1, run.report("sales")
    assert len(run.linked) >= 8, run.report("sales")


def test_catalogue_scenarios_create_products_and_act_on_them(stack, tokens):
    run = Run()
    started = time.monotonic()
    # When the catalogue's scenarios run (products, stock, promotions: created by PUT)
    catalogue = schemathesis.openapi.from_path(OPENAPI, config=CONFIG).include(operation_id=CATALOGUE)
    run_machine(machine(catalogue, stack.api_url, tokens, "", run), CATALOGUE_SCENARIOS, CATALOGUE_STEPS, run)
    print(run.report(f"stateful catalogue run ({time.monotonic() - started:.0f} s)"))
    # Then no 5xx, and a created product was read and its stock counted along the links
    assert run.server_errors == []
    assert len(run.created["product"]) >= 1
    assert run.count("GET /products/{sku}", 200) >= 1, run.report("catalogue")
    assert run.count("PUT /admin/stock/{sku}", 201) >= 1, run.report("catalogue")
