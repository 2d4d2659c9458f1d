"""The HMAC payment webhook of API.md (pure)."""

from __future__ import annotations

import json

import pytest

from shared.kernel.errors import BadSignature, MalformedRequest, ValidationFailed
from shared.payments.hmac_webhook import HmacWebhookProvider, sign

SECRET = "s3cret-s3cret"
NOW = 1_800_000_000
BODY = json.dumps(
    {"order_id": "o1", "transaction_id": "t1", "amount_fen": 1234, "paid_at": "2026-11-23T00:00:00Z"}
).encode()
PROVIDER = HmacWebhookProvider(SECRET)


def test_a_good_signature_gives_the_notice():
    notice = PROVIDER.verify({"x-pay-signature": sign(SECRET, BODY, NOW)}, BODY, NOW + 10)
    assert (notice.order_id, notice.transaction_id, notice.amount_fen) == ("o1", "t1", 1234)


@pytest.mark.parametrize(
    "header, now",
    [
        (None, NOW),
        ("garbage", NOW),
        ("t=abc,v1=00", NOW),
        (sign("other-secret", BODY, NOW), NOW),  # forged
        (sign(SECRET, BODY, NOW), NOW + 301),  # stale
        (sign(SECRET, BODY, NOW + 400), NOW),  # from the future
        (sign(SECRET, BODY + b" ", NOW), NOW),  # another body
    ],
)
def test_bad_or_stale_signatures_are_refused(header, now):
    headers = {} if header is None else {"x-pay-signature": header}
    with pytest.raises(BadSignature):
        PROVIDER.verify(headers, BODY, now)


def test_signed_but_malformed_bodies_are_400_or_422():
    for raw, error in ((b"{nope", MalformedRequest), (b'{"order_id": "o1", "amount_fen": 1.5}', ValidationFailed)):
        with pytest.raises(error):
            PROVIDER.verify({"x-pay-signature": sign(SECRET, raw, NOW)}, raw, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "t=" + "9" * 309 + ",v1=00",  # int() reads it; its distance from now overflowed a float
        "t=" + "9" * 5000 + ",v1=00",  # past int()'s digit limit
        f"t={NOW},v1=é",  # compare_digest raised TypeError on non-ASCII text
        f"t={NOW},v1=" + "é" * 64,
        "t=１８００００００００,v1=" + "0" * 64,  # full-width digits, which int() accepts
        f"t={NOW},v1=" + "0" * 63,
        f"t=-{NOW},v1=" + "0" * 64,
    ],
)
def test_signature_headers_of_the_wrong_shape_are_bad_signatures(header):
    with pytest.raises(BadSignature):
        PROVIDER.verify({"x-pay-signature": header}, BODY, NOW)


def test_an_upper_case_hex_signature_is_the_same_signature():
    header = sign(SECRET, BODY, NOW)
    t, v1 = header.split(",")
    assert PROVIDER.verify({"x-pay-signature": f"{t},{v1.upper().replace('V1=', 'v1=')}"}, BODY, NOW).order_id == "o1"


def test_a_signed_body_nested_a_thousand_deep_is_malformed():
    for raw in (b'{"order_id":' + b"[" * 1000 + b"]" * 1000 + b"}", b"[" * 100_000):
        with pytest.raises(MalformedRequest):
            PROVIDER.verify({"x-pay-signature": sign(SECRET, raw, NOW)}, raw, NOW)


@pytest.mark.parametrize("paid_at", ["yesterday", "2026-11-23", "2026-11-23T00:00:00", "", "１"])
def test_paid_at_must_be_an_iso_8601_time_with_a_zone(paid_at):
    raw = json.dumps({"order_id": "o1", "transaction_id": "t1", "amount_fen": 1, "paid_at": paid_at}).encode()
    with pytest.raises(ValidationFailed):
        PROVIDER.verify({"x-pay-signature": sign(SECRET, raw, NOW)}, raw, NOW)


@pytest.mark.parametrize("paid_at", ["2026-11-23T00:00:00Z", "2026-11-23T08:00:00+08:00", "2026-11-23T00:00:00.123Z"])
def test_iso_8601_times_with_a_zone_are_accepted(paid_at):
    raw = json.dumps({"order_id": "o1", "transaction_id": "t1", "amount_fen": 1, "paid_at": paid_at}).encode()
    assert PROVIDER.verify({"x-pay-signature": sign(SECRET, raw, NOW)}, raw, NOW).paid_at == paid_at
