"""A signed demo token for the local stack, from any directory:

    <repo>/.venv/bin/python <repo>/infra/local/demo_token.py customer c-42
    <repo>/.venv/bin/python <repo>/infra/local/demo_token.py store_staff staff-S002 --store S002

HS256 with the local stage's `JWT_SECRET` (`.chalice/config.json`, `dev-jwt-secret`), valid 24 hours
like the ones `make dev` prints. Guides and store staff need `--store` (the `store_id` claim).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run by path from anywhere, not only as `python -m` from the root
    sys.path.insert(0, str(ROOT))

from infra.local.stack import stage_environment  # noqa: E402
from shared.kernel.identity import STORE_ROLES, Role  # noqa: E402
from shared.web.auth import issue_token  # noqa: E402

DAY_S = 24 * 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=[role.value for role in Role])
    parser.add_argument("sub", help="who the token is for, e.g. c-42")
    parser.add_argument("--store", help="store_id, needed by guide and store_staff (e.g. S001)")
    parser.add_argument("--ttl", type=int, default=DAY_S, help="seconds the token is valid (default 24 h)")
    args = parser.parse_args(argv)
    role = Role(args.role)
    if role in STORE_ROLES and not args.store:
        parser.error(f"{role.value} needs --store (the store it acts for, e.g. S001)")
    secret = stage_environment("local")["JWT_SECRET"]
    print(issue_token(secret, args.sub, role, args.store if role in STORE_ROLES else None, ttl_s=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
