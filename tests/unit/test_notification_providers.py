"""The provider adapters build the real request bodies and read the real answers (with a
recording transport: nothing leaves the machine)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.kernel.clock import FakeClock
from shared.notifications.model import Channel, Locale, Message
from shared.notifications.providers import (
    HttpResponse,
    ProviderError,
    SinkProvider,
    SmsGatewayProvider,
    StableAccessToken,
    WeChatSubscribeProvider,
)
from shared.notifications.templates import params_of, render

ORDER = {"order_id": "o0193a5b2c3d4e5f6a7b8c9d0e1f2a3b4c5", "total_fen": 16800, "store_id": "WH"}


class RecordingTransport:
    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict | None, dict | None]] = []

    def post(self, url: str, *, json_body: dict | None = None, form: dict | None = None) -> HttpResponse:
        self.calls.append((url, json_body, form))
        return HttpResponse(200, self.answers.pop(0))


def message(channel: Channel, locale: Locale = Locale.ZH) -> Message:
    return Message(
        notice_id="e-1",
        event_type="OrderPaid",
        template="OrderPaid",
        channel=channel,
        recipient="c-1",
        rendered=render("OrderPaid", channel, locale, params_of(ORDER, locale)),
    )


def token_answer() -> dict[str, Any]:
    return {"access_token": "ACCESS", "expires_in": 7200}


def test_the_wechat_request_is_a_subscribe_message_send():
    transport = RecordingTransport(token_answer(), {"errcode": 0, "errmsg": "ok", "msgid": 42})
    provider = WeChatSubscribeProvider(StableAccessToken("wx-app", "app-secret", transport), transport, "formal")
    # When a message is sent
    reference = provider.send(message(Channel.WECHAT), "o-openid", Locale.ZH)
    # Then the token came from the stable-token endpoint and the message went to subscribe/send
    (token_url, token_body, _), (send_url, send_body, _) = transport.calls
    assert token_url == "https://api.weixin.qq.com/cgi-bin/stable_token"
    assert token_body == {
        "grant_type": "client_credential",
        "appid": "wx-app",
        "secret": "app-secret",
        "force_refresh": False,
    }
    assert send_url == "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=ACCESS"
    assert send_body == {
        "touser": "o-openid",
        "template_id": "wx-order-paid",
        "page": f"pages/orders/detail?id={ORDER['order_id']}",
        "data": {
            "character_string1": {"value": "F2A3B4C5"},
            "amount2": {"value": "¥168.00"},
            "phrase3": {"value": "已支付"},
        },
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    assert reference == "42"


def test_the_access_token_is_reused_until_it_expires():
    transport = RecordingTransport(token_answer(), {"errcode": 0, "msgid": 1}, {"errcode": 0, "msgid": 2})
    provider = WeChatSubscribeProvider(StableAccessToken("a", "s", transport), transport)
    provider.send(message(Channel.WECHAT), "o", Locale.ZH)
    provider.send(message(Channel.WECHAT), "o", Locale.ZH)
    assert [url for url, *_ in transport.calls].count("https://api.weixin.qq.com/cgi-bin/stable_token") == 1


def test_the_access_token_is_fetched_again_a_minute_before_it_expires():
    answers = [token_answer(), {"access_token": "FRESH", "expires_in": 7200}]
    transport = RecordingTransport(*answers)
    clock = FakeClock()
    tokens = StableAccessToken("a", "s", transport, clock)
    assert tokens.token() == "ACCESS"
    clock.advance(7200 - 61)
    assert tokens.token() == "ACCESS" and len(transport.calls) == 1
    clock.advance(1)
    assert tokens.token() == "FRESH" and len(transport.calls) == 2


@pytest.mark.parametrize(
    ("errcode", "retryable"),
    [(-1, True), (45009, True), (42001, True), (43101, False), (40003, False), (47003, False)],
)
def test_wechat_errors_are_retryable_or_final(errcode, retryable):
    transport = RecordingTransport(token_answer(), {"errcode": errcode, "errmsg": "x"})
    provider = WeChatSubscribeProvider(StableAccessToken("a", "s", transport), transport)
    with pytest.raises(ProviderError) as raised:
        provider.send(message(Channel.WECHAT), "o", Locale.ZH)
    assert raised.value.retryable is retryable
    assert f"errcode {errcode}" in raised.value.reason


def test_the_sms_request_is_the_gateways_form_with_the_signed_text():
    transport = RecordingTransport({"code": 0, "msg": "发送成功", "count": 1, "sid": 9001})
    provider = SmsGatewayProvider("API-KEY", transport)
    reference = provider.send(message(Channel.SMS), "13800000000", Locale.ZH)
    [(url, json_body, form)] = transport.calls
    assert url == "https://sms.yunpian.com/v2/sms/single_send.json" and json_body is None
    assert form is not None
    assert form["apikey"] == "API-KEY" and form["mobile"] == "13800000000"
    assert form["text"] == "【云店】订单F2A3B4C5已支付¥168.00，正在为您备货。"
    assert len(form["uid"]) == 32  # our message id, echoed in delivery reports
    assert reference == "9001"


@pytest.mark.parametrize(("code", "retryable"), [(33, True), (53, True), (2, False), (-1, False)])
def test_sms_errors_are_retryable_or_final(code, retryable):
    provider = SmsGatewayProvider("k", RecordingTransport({"code": code, "msg": "x"}))
    with pytest.raises(ProviderError) as raised:
        provider.send(message(Channel.SMS), "13800000000", Locale.ZH)
    assert raised.value.retryable is retryable


def test_an_adapter_refuses_another_channels_message():
    with pytest.raises(ProviderError) as raised:
        SmsGatewayProvider("k", RecordingTransport()).send(message(Channel.EMAIL), "x", Locale.ZH)
    assert raised.value.retryable is False


def test_the_sink_prints_one_line_per_message(capsys):
    assert SinkProvider().send(message(Channel.SMS), "13800000000", Locale.ZH) == "sink:e-1:sms:c-1"
    out = capsys.readouterr().out
    assert out.startswith("[notify] sms") and "c-1 (OrderPaid)" in out and "13800000000" not in out
