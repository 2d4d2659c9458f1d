"""Generated hostile requests over HTTP: hypothesis over the payment signature header and over token
claims, and a bounded schemathesis run over every documented operation. None may answer 500 (a 503
is "busy, retry", documented); the tier's summary prints how many cases ran."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.kernel.identity import Role
from tests.e2e.test_schemathesis import token_for
from tests.hostile.tally import record

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
EXAMPLES = 120  # per hypothesis test
SCHEMATHESIS_EXAMPLES = 6  # random cases per operation, on top of examples and boundary values
BODY = json.dumps(
    {"order_id": "o-generated", "transaction_id": "t-1", "amount_fen": 1, "paid_at": "2026-01-01T00:00:00Z"}
).encode()
HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def not_a_failure(response: requests.Response) -> None:
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text[:300])


# -- the payment signature ---------------------------------------------------------------------------
digits = st.text(alphabet="0123456789", min_size=0, max_size=400)
# What a header can carry at all: no control characters (CR, LF), no leading white space
printable = st.characters(blacklist_categories=("Cc", "Cs"))
anything = st.text(printable, max_size=80)
signature_headers = st.one_of(
    st.text(printable, max_size=300),
    st.builds(
        lambda t, v: f"t={t},v1={v}", st.one_of(digits, anything), st.one_of(st.text("0123456789abcdef"), anything)
    ),
    st.builds(
        lambda t, v, extra: f"{extra},t={t},v1={v},{extra}",
        st.integers(min_value=-(10**20), max_value=10**20),
        st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64),
        anything,
    ),
)


@HYPOTHESIS
@given(header=signature_headers)
def test_any_signature_header_is_refused_with_401(stack, header):
    answer = record(
        requests.post(
            f"{stack.api_url}/payments/notify",
            data=BODY,
            headers={"X-Pay-Signature": header.lstrip().encode("utf-8"), "Content-Type": "application/json"},
            timeout=30,
        ),
        generated=True,
    )
    not_a_failure(answer)
    # No signature made without the secret matches: 401 (400 only if the header itself is unreadable)
    assert answer.status_code in (400, 401), answer.text


# -- token claims ------------------------------------------------------------------------------------
claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
)


@HYPOTHESIS
@given(
    sub=st.one_of(claim_values, st.sampled_from(["c-gen", " ", ""])),
    role=st.one_of(claim_values, st.sampled_from([r.value for r in Role])),
    exp=st.one_of(claim_values, st.integers(int(time.time()) + 60, int(time.time()) + 86_400).map(lambda e: e)),
    store_id=st.one_of(claim_values, st.sampled_from(["S001", " ", "S 1"])),
    iat=claim_values,
)
def test_any_claims_are_one_sound_principal_or_401(stack, sub, role, exp, store_id, iat):
    claims = {k: v for k, v in {"sub": sub, "role": role, "exp": exp, "store_id": store_id, "iat": iat}.items()}
    token = jwt.encode({k: v for k, v in claims.items() if v is not None}, stack.environment["JWT_SECRET"])
    answer = record(
        requests.get(f"{stack.api_url}/me/notifications", headers={"Authorization": f"Bearer {token}"}, timeout=30),
        generated=True,
    )
    not_a_failure(answer)
    if answer.status_code == 200:
        # Then the token named one non-blank person in one of the roles, with a store if needed
        assert isinstance(sub, str) and sub.strip() and type(exp) is int
        assert role in {r.value for r in Role}
        assert role not in ("guide", "store_staff") or (isinstance(store_id, str) and store_id.strip())
    else:
        assert answer.status_code in (401, 503), answer.text


# -- every operation, generated -----------------------------------------------------------------------
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "with-security-parameters": False},
        "phases": {"stateful": {"enabled": False}, "coverage": {"unexpected-methods": []}},
    }
)
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)


@schema.parametrize()
@settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_generated_request_is_answered_with_a_500(case, stack, tokens):
    headers: dict[str, Any] = token_for(case.operation, tokens)
    answer = record(case.call(base_url=stack.api_url, headers=headers, timeout=30), generated=True)
    not_a_failure(answer)


# The same operations with every role's token, whether or not the operation admits it: fewer
# cases (no coverage phase), since most end at the role check.
CROSS_ROLE = schemathesis.openapi.from_path(
    OPENAPI,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "with-security-parameters": False},
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
        }
    ),
)


@pytest.mark.parametrize("role", ["customer", "guide", "finance"])  # store_staff reaches what a guide does and more
@CROSS_ROLE.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_role_gets_a_500_from_an_operation_it_may_not_call(case, stack, tokens, role):
    answer = record(
        case.call(base_url=stack.api_url, headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=30),
        generated=True,
    )
    not_a_failure(answer)
