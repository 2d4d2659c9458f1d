"""No pickup code, phone or address in a log line or the notification sink's output (pure)."""

from __future__ import annotations

import io
import json

from shared.kernel.redaction import mask_pii, mask_text
from shared.notifications.model import Channel, Locale, Message
from shared.notifications.providers import SinkProvider
from shared.notifications.templates import params_of, render
from shared.platform.observability import logger

CODE = "482913"
ADDRESS = {"recipient": "韩梅梅", "phone": "+86 137 0000 1234", "city": "上海", "detail": "徐汇区 3 号"}


def pickup_message(channel: Channel) -> Message:
    payload = {"order_id": "o0193a5b2c3d4e5f6", "pickup_code": CODE, "location": "S001"}
    return Message(
        notice_id="e-1",
        event_type="OrderFulfilled",
        template="OrderReadyForPickup",
        channel=channel,
        recipient="c-1",
        rendered=render("OrderReadyForPickup", channel, Locale.ZH, params_of(payload, Locale.ZH)),
    )


def test_the_sink_never_prints_a_pickup_code(capsys):
    for channel in (Channel.SMS, Channel.WECHAT, Channel.EMAIL):
        message = pickup_message(channel)
        assert CODE in message.rendered.text or channel is not Channel.SMS  # the SMS does carry the code
        SinkProvider().send(message, "13700001234", Locale.ZH)
    out = capsys.readouterr().out
    assert out.count("[notify]") == 3
    assert CODE not in out and "13700001234" not in out


def test_free_text_keeps_amounts_and_masks_codes_and_phones():
    text = "订单1a2b可自提，取货码482913，应付¥168.00，电话 +86 137 0000 1234。"
    masked = mask_text(text)
    assert "482913" not in masked and "1234" not in masked and "137" not in masked
    assert "¥168.00" in masked and "1a2b" in masked


def test_structured_values_are_masked_by_key_and_phones_anywhere():
    masked = mask_pii(
        {"fulfilment": {"type": "delivery", "address": ADDRESS}, "pickup_code": CODE, "note": "13700001234"}
    )
    flat = json.dumps(masked, ensure_ascii=False)
    for secret in (CODE, "韩梅梅", "徐汇区", "0000 1234", "13700001234"):
        assert secret not in flat
    assert masked["fulfilment"]["type"] == "delivery" and masked["fulfilment"]["address"]["city"] == "上海"


def test_a_log_line_with_personal_data_in_extra_is_masked():
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    try:
        logger.warning("refund asked", extra={"address": ADDRESS, "pickup_code": CODE, "phone": "13700001234"})
    finally:
        logger.registered_handler.setStream(previous)
    line = json.dumps(json.loads(stream.getvalue()), ensure_ascii=False)  # as CloudWatch shows it
    assert "refund asked" in line
    for secret in (CODE, "韩梅梅", "徐汇区", "13700001234", "0000 1234"):
        assert secret not in line
