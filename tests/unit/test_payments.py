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
