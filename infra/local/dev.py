"""`make dev`: the whole system on this machine until Ctrl-C.

API on http://127.0.0.1:8000 (`chalice local --stage local`), the serialised moto server on
http://127.0.0.1:5100, the event runner in this process. Prints a signed demo token per role.

The local WeChat Pay runs beside it (infra/local/wechatpay_server.py on http://127.0.0.1:5300, fresh keys
in build/local/wechatpay/) and is the local stage's payment provider: `POST /orders/{id}/payments` prepays
through it and `POST /dev/pay/{id}` makes it pay the order (its signed, encrypted callback applies the
payment). The HMAC webhook `POST /payments/notify` stays live beside it. `--payment-provider hmac` runs
without the local WeChat Pay: the HMAC webhook is then the only provider, and `/dev/pay` signs its
notification. `--setting WECHATPAY_PROFIT_SHARING=0` turns profit sharing off (on by default here).

`--fault-rate 0.1 [--fault-partitions FLASH#,ORDER#]` runs the API under the fault harness instead
(infra/local/api_with_faults.py): that share of its DynamoDB calls is throttled, conflicts or times
out, and the stack's output ends with what was injected. `--fault-targets api,runner` does the same
to the event runner's DynamoDB calls (the relay, the queue consumers, the schedules).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from infra.local.api_with_faults import FaultPlan
from infra.local.seed import DEALER, GUIDES
from infra.local.stack import LocalStack, PortTaken


def demo_tokens(secret: str) -> dict[str, str]:
    from shared.web.auth import Role, issue_token

    day = 24 * 3600
    return {
        "customer (c-demo)": issue_token(secret, "c-demo", Role.CUSTOMER, ttl_s=day),
        f"guide ({GUIDES[0][0]} of {GUIDES[0][2]})": issue_token(
            secret, GUIDES[0][0], Role.GUIDE, GUIDES[0][2], ttl_s=day
        ),
        "store_staff (staff-S001)": issue_token(secret, "staff-S001", Role.STORE_STAFF, "S001", ttl_s=day),
        "merchant_admin (admin)": issue_token(secret, "admin", Role.MERCHANT_ADMIN, ttl_s=day),
        "finance (finance)": issue_token(secret, "finance", Role.FINANCE, ttl_s=day),
        f"dealer ({DEALER[0]})": issue_token(
            secret, f"dealer-{DEALER[0]}", Role.DEALER, ttl_s=day, dealer_id=DEALER[0]
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="run the whole system locally")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--moto-port", type=int, default=5100)
    parser.add_argument("--schedule-every", type=float, default=3.0, help="seconds between schedule runs")
    parser.add_argument(
        "--payment-window", type=int, default=None, help="seconds an unpaid order is held (default 900)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting the local stage leaves open (shared/platform/settings.py), e.g. FLASH_SALE_SETTLE_S=3",
    )
    wechatpay = parser.add_argument_group("payments (docs/payments.md)")
    wechatpay.add_argument(
        "--payment-provider",
        choices=("hmac", "wechatpay"),
        default="wechatpay",
        help="wechatpay (default): run the local WeChat Pay (fresh keys) and take payments through it; "
        "hmac: only the HMAC webhook",
    )
    wechatpay.add_argument("--wechatpay-port", type=int, default=5300)
    wechatpay.add_argument("--wechatpay-keys", type=Path, default=None, help="default build/local/wechatpay")
    wechatpay.add_argument("--wechatpay-mode", choices=("public_key", "certificate"), default="public_key")
    faults = parser.add_argument_group("fault harness (infra/local/api_with_faults.py): DynamoDB calls fail")
    faults.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of attempts that fail, 0..1 (default 0: none)"
    )
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument("--fault-kinds", default="", help="comma-separated (infra/local/faults.py Kind); default all")
    faults.add_argument("--fault-operations", default="", help="comma-separated, e.g. UpdateItem; default all")
    faults.add_argument("--fault-partitions", default="", help="comma-separated pk prefixes, e.g. FLASH#,ORDER#")
    faults.add_argument(
        "--fault-targets", default="api", help="comma-separated: api, runner (the event runner); default api"
    )
    args = parser.parse_args()
    # SIGTERM (e.g. from a supervisor) stops the stack as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # A shell starts a background job (`make dev &` in a script, a CI step) with SIGINT ignored, and
    # Python then leaves it ignored: Ctrl-C to the group would stop the emulator and the API but not
    # this process. Ctrl-C stops everything, however the stack was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    overrides = dict(setting.split("=", 1) for setting in args.setting)
    if args.payment_window:
        overrides["ORDER_PAYMENT_WINDOW_S"] = str(args.payment_window)
    plan = FaultPlan.from_environment(
        {
            "FAULT_RATE": str(args.fault_rate),
            "FAULT_SEED": str(args.fault_seed),
            "FAULT_KINDS": args.fault_kinds,
            "FAULT_OPERATIONS": args.fault_operations,
            "FAULT_PARTITIONS": args.fault_partitions,
            "FAULT_TARGETS": args.fault_targets,
        }
    )
    stack = LocalStack(
        moto_port=args.moto_port,
        api_port=args.api_port,
        schedule_every_s=args.schedule_every,
        overrides=overrides,
        faults=plan,
        payment_provider=args.payment_provider,
        wechatpay_port=args.wechatpay_port,
        wechatpay_keys=args.wechatpay_keys,
        wechatpay_mode=args.wechatpay_mode,
    )
    started = time.monotonic()
    try:
        stack.start()
    except PortTaken as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"\nready in {time.monotonic() - started:.1f}s")
        print(f"  API       {stack.api_url}   (try: curl {stack.api_url}/products)")
        print(f"  emulator  {stack.moto_endpoint}   (moto, serialised)")
        if args.payment_provider == "wechatpay":
            print(
                f"  WeChat Pay {stack.wechatpay_url}   (local; pay: python -m infra.local.wechatpay_server pay <order>)"
            )
        if plan is not None:
            print(f"  faults    {plan.describe()}; the report prints when the stack stops")
        print("  tokens (Authorization: Bearer <token>, valid 24 h):")
        for role, token in demo_tokens(stack.env["JWT_SECRET"]).items():
            print(f"    {role}:\n      {token}")
        print("Ctrl-C stops everything.\n", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
