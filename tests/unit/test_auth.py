"""Bearer tokens (shared/web/auth.py): what a token must carry to be a principal (pure)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.errors import Unauthenticated
from shared.kernel.identity import Role
from shared.web.auth import LEEWAY_S, authenticate, issue_token

SECRET = "unit-jwt-secret"


def bearer(claims: dict[str, Any], secret: str = SECRET) -> str:
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def good(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "c-1", "role": "customer", "exp": int(time.time()) + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_an_issued_token_is_its_principal():
    who = authenticate("Bearer " + issue_token(SECRET, "G001", Role.GUIDE, "S001"), SECRET)
    assert (who.sub, who.role, who.store_id) == ("G001", Role.GUIDE, "S001")


@pytest.mark.parametrize(
    "claims",
    [
        good(exp=str(int(time.time()) + 600)),  # PyJWT takes a numeric string
        good(exp=f"  {int(time.time()) + 600} "),
        good(exp=float(int(time.time()) + 600)),
        good(exp=True),
        good(sub=""),
        good(sub="   "),
        good(sub="\t\n"),
        good(sub="x" * 129),
        good(role="root"),
        good(role=["customer"]),
        good(role="Customer"),
        good(role="guide"),  # no store_id
        good(role="store_staff", store_id=""),
        good(role="store_staff", store_id="   "),
        good(role="store_staff", store_id=7),
        good(role="dealer"),  # no dealer_id
        good(role="dealer", dealer_id=""),
        good(role="dealer", dealer_id="D 1"),
        good(role="dealer", dealer_id=1),
        good(role="dealer", store_id="S001"),  # a store does not make a dealer
        good(iat="now"),
        good(exp=int(time.time()) - LEEWAY_S - 5),
    ],
)
def test_tokens_that_do_not_name_one_person_in_one_role_are_refused(claims):
    with pytest.raises(Unauthenticated):
        authenticate(bearer(claims), SECRET)


def test_a_token_just_past_its_exp_is_taken_within_the_leeway():
    who = authenticate(bearer(good(exp=int(time.time()) - LEEWAY_S // 2)), SECRET)
    assert who.sub == "c-1"


def test_a_dealer_token_names_its_dealer_and_no_store():
    who = authenticate(bearer(good(role="dealer", dealer_id="D001", store_id="S001")), SECRET)
    assert (who.role, who.dealer_id, who.store_id) == (Role.DEALER, "D001", None)


def test_a_dealer_id_on_another_role_is_dropped():
    assert authenticate(bearer(good(role="finance", dealer_id="D001")), SECRET).dealer_id is None


def test_a_store_id_on_a_customer_is_dropped():
    assert authenticate(bearer(good(store_id="S001")), SECRET).store_id is None


def test_issuer_and_audience_are_checked_when_the_stage_names_them():
    claims = good(iss="https://login.example", aud="retail")
    assert authenticate(bearer(claims), SECRET, issuer="https://login.example", audience="retail").sub == "c-1"
    for iss, aud in (("https://other.example", "retail"), ("https://login.example", "other"), (None, "retail")):
        with pytest.raises(Unauthenticated):
            authenticate(bearer(good(iss=iss, aud=aud)), SECRET, issuer="https://login.example", audience="retail")
    # Unset (or empty, as a template's default) checks nothing about iss
    assert authenticate(bearer(good(iss="anyone")), SECRET, issuer="", audience=None).sub == "c-1"


def test_no_refusal_repeats_the_token():
    token = jwt.encode(good(role="x" * 40), SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated) as refused:
        authenticate(f"Bearer {token}", SECRET)
    assert token not in str(refused.value.message) + str(refused.value.details)
    assert "x" * 40 not in str(refused.value.details)


claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    sub=claim_values,
    role=st.one_of(claim_values, st.sampled_from([r.value for r in Role])),
    exp=st.one_of(claim_values, st.integers(min_value=int(time.time()) + 60, max_value=int(time.time()) + 10**6)),
    store_id=st.one_of(claim_values, st.sampled_from(["S001", " ", ""])),
    dealer_id=st.one_of(claim_values, st.sampled_from(["D001", " ", ""])),
    iat=st.one_of(st.none(), claim_values),
)
def test_any_claims_give_a_sound_principal_or_unauthenticated(sub, role, exp, store_id, dealer_id, iat):
    claims = {"sub": sub, "role": role, "exp": exp, "store_id": store_id, "dealer_id": dealer_id, "iat": iat}
    try:
        who = authenticate(bearer({k: v for k, v in claims.items() if v is not None}), SECRET)
    except Unauthenticated:
        return
    # Then it is one non-blank person, in one of the roles, with a store when the role needs one
    assert isinstance(who.sub, str) and who.sub.strip()
    assert type(exp) is int
    assert who.role in set(Role)
    assert (who.store_id is not None) == (who.role in (Role.GUIDE, Role.STORE_STAFF))
    assert (who.dealer_id is not None) == (who.role is Role.DEALER)


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=200))
def test_any_authorization_header_is_a_principal_or_unauthenticated(header):
    with contextlib.suppress(Unauthenticated):
        authenticate(header, SECRET)
