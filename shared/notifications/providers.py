"""Providers: who carries a message to the person, behind one interface.

- `SinkProvider` (local and test stages, and `dev` until real credentials exist): stores nothing
  of its own (the message item in DynamoDB is the record, readable through the API) and prints
  one line per message, which is what `make dev` shows.
- `WeChatSubscribeProvider`: the mini-program subscribe-message API
  (`POST https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=...`, body
  `{touser, template_id, page, data, miniprogram_state, lang}`), with the access token from the
  stable-token endpoint, cached until shortly before it expires.
- `SmsGatewayProvider`: a text SMS gateway in the style of Yunpian's `single_send`
  (form fields `apikey`, `mobile`, `text`, `uid`); the signature is part of the text.

Adapters build the real request bodies and hand them to a `Transport` (urllib in AWS, a
recording fake in tests: nothing here leaves 127.0.0.1 in this repository). A provider raises
`ProviderError(retryable=...)`: retryable failures (rate limits, busy, timeouts) are retried with
backoff; permanent ones (revoked consent, invalid number) end the message as skipped.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from shared.kernel.clock import SYSTEM, Clock
from shared.kernel.redaction import mask_text
from shared.notifications.model import Channel, Locale, Message


class ProviderError(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Provider(Protocol):
    def send(self, message: Message, address: str, locale: Locale) -> str:
        """Deliver; returns the provider's id for the message. Raises ProviderError."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any]


class Transport(Protocol):
    def post(
        self, url: str, *, json_body: dict[str, Any] | None = None, form: dict[str, str] | None = None
    ) -> HttpResponse:
        """POST and parse the JSON answer; raise ProviderError(retryable=True) on a timeout."""


class UrllibTransport:
    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    def post(
        self, url: str, *, json_body: dict[str, Any] | None = None, form: dict[str, str] | None = None
    ) -> HttpResponse:
        if json_body is not None:
            data, content_type = json.dumps(json_body, ensure_ascii=False).encode(), "application/json; charset=utf-8"
        else:
            data, content_type = urllib.parse.urlencode(form or {}).encode(), "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return HttpResponse(response.status, json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            return HttpResponse(exc.code, _json_or_empty(exc.read()))
        except (urllib.error.URLError, TimeoutError) as exc:
            # Sent or not, we cannot tell: retrying may duplicate (docs/notifications.md, "the window").
            raise ProviderError(f"no answer: {exc}", retryable=True) from exc


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SinkProvider:
    """Local: the message item is the record; this prints it so `make dev` shows what went out."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo

    def send(self, message: Message, address: str, locale: Locale) -> str:
        if self.echo:
            # Printed to the dev stage's log: digits that could be a pickup code or a phone are masked.
            text = mask_text(message.rendered.text)
            line = f"[notify] {message.channel:<6} -> {message.recipient} ({message.template}): {text}"
            print(line, flush=True)
        return f"sink:{message.notice_id}:{message.channel}:{message.recipient}"


# -- WeChat ------------------------------------------------------------------------------------
WECHAT_API = "https://api.weixin.qq.com"
# errcodes that retrying can fix: system busy, rate limits, an access token that just expired.
WECHAT_RETRYABLE = frozenset({-1, 45009, 45011, 40001, 42001})


class StableAccessToken:
    """`POST /cgi-bin/stable_token` (client_credential), cached until a minute before expiry; the
    stable token stays valid across refreshes, so concurrent Lambdas do not invalidate each other."""

    def __init__(self, app_id: str, app_secret: str, transport: Transport, clock: Clock = SYSTEM) -> None:
        self.app_id, self.app_secret, self.transport = app_id, app_secret, transport
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0  # on the clock's monotonic seconds: a lifetime inside this process
        self._lock = threading.Lock()

    def request_body(self, force_refresh: bool = False) -> dict[str, Any]:
        return {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self.app_secret,
            "force_refresh": force_refresh,
        }

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock.monotonic() >= self._expires_at:
                answer = self.transport.post(f"{WECHAT_API}/cgi-bin/stable_token", json_body=self.request_body())
                if "access_token" not in answer.body:
                    raise ProviderError(f"wechat token: {answer.body.get('errmsg', answer.status)}", retryable=True)
                self._token = str(answer.body["access_token"])
                self._expires_at = self.clock.monotonic() + int(answer.body.get("expires_in", 7200)) - 60
            return self._token

    def forget(self) -> None:
        with self._lock:
            self._token = None


class WeChatSubscribeProvider:
    def __init__(self, tokens: StableAccessToken, transport: Transport, miniprogram_state: str = "formal") -> None:
        self.tokens, self.transport, self.miniprogram_state = tokens, transport, miniprogram_state

    def request_body(self, message: Message, openid: str, locale: Locale) -> dict[str, Any]:
        rendered = message.rendered
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": rendered.template_id,
            "data": rendered.data,
            "miniprogram_state": self.miniprogram_state,
            "lang": "zh_CN" if locale is Locale.ZH else "en_US",
        }
        if rendered.page:
            body["page"] = rendered.page
        return body

    def send(self, message: Message, address: str, locale: Locale) -> str:
        if message.channel is not Channel.WECHAT:
            raise ProviderError(f"the WeChat provider cannot send {message.channel}", retryable=False)
        url = f"{WECHAT_API}/cgi-bin/message/subscribe/send?access_token={self.tokens.token()}"
        answer = self.transport.post(url, json_body=self.request_body(message, address, locale))
        code = int(answer.body.get("errcode", 0 if answer.status == 200 else -1))
        if code == 0:
            return str(answer.body.get("msgid", ""))
        if code in (40001, 42001):
            self.tokens.forget()
        reason = f"wechat errcode {code}: {answer.body.get('errmsg', '')}"
        raise ProviderError(reason, retryable=code in WECHAT_RETRYABLE)


# -- SMS ---------------------------------------------------------------------------------------
SMS_GATEWAY = "https://sms.yunpian.com/v2/sms/single_send.json"
# Gateway codes that retrying can fix: frequency limits and the gateway's own trouble.
# (3 is an empty balance: an operator can top it up before the retries run out.)
SMS_RETRYABLE = frozenset({3, 8, 9, 22, 33, 53, -50})


class SmsGatewayProvider:
    def __init__(self, api_key: str, transport: Transport, url: str = SMS_GATEWAY) -> None:
        self.api_key, self.transport, self.url = api_key, transport, url

    def request_form(self, message: Message, mobile: str) -> dict[str, str]:
        # `uid` is our message id, echoed in the delivery report; the text carries the signature.
        return {"apikey": self.api_key, "mobile": mobile, "text": message.rendered.text, "uid": _uid(message)}

    def send(self, message: Message, address: str, locale: Locale) -> str:
        if message.channel is not Channel.SMS:
            raise ProviderError(f"the SMS gateway cannot send {message.channel}", retryable=False)
        answer = self.transport.post(self.url, form=self.request_form(message, address))
        code = int(answer.body.get("code", 0 if answer.status == 200 else -50))
        if code == 0:
            return str(answer.body.get("sid", ""))
        raise ProviderError(f"sms code {code}: {answer.body.get('msg', '')}", retryable=code in SMS_RETRYABLE)


def _uid(message: Message) -> str:
    return hashlib.sha256("|".join(map(str, message.key)).encode()).hexdigest()[:32]
