"""API.md "Notifications": a person's own messages, preferences and contact details; the admin feed.

The service modules are imported inside the views: they are only needed when a notifications route
runs, and the API Lambda's cold import serves every route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Response

from functions.notifications.blueprint import bp
from shared.kernel.clock import now_ms
from shared.kernel.idempotency import IdempotentRequest
from shared.kernel.identity import API_ROLES, Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import (
    decode_cursor,
    encode_cursor,
    idempotency_key,
    json_response,
    ok,
    parse,
    principal,
    query_int,
    query_str,
)

if TYPE_CHECKING:
    from functions.notifications import models
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.notifications.models")


if TYPE_CHECKING:
    from shared.notifications.model import Page

ANYONE_SIGNED_IN = list(API_ROLES)


def _profiles() -> Any:
    from shared.notifications import profiles

    return profiles


def _page(page: Page) -> Response:
    return ok({"items": [m.view() for m in page.messages], "next_cursor": encode_cursor(page.next_cursor)})


@bp.route("/me/notifications", methods=["GET"], roles=ANYONE_SIGNED_IN)
def my_notifications() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    return _page(_profiles().own_messages(bootstrap.notification_messages(), principal().sub, limit, cursor))


@bp.route("/admin/notifications", methods=["GET"], roles=[Role.MERCHANT_ADMIN])
def admin_notifications() -> Response:
    limit = query_int("limit", 20, low=1, high=100)
    cursor = decode_cursor(query_str("cursor"))
    log = bootstrap.notification_messages()
    recipient, event = query_str("recipient"), query_str("event")
    return _page(_profiles().admin_feed(log, recipient, event, limit, cursor, now_ms()))


@bp.route("/me/notification-preferences", methods=["GET"], roles=ANYONE_SIGNED_IN)
def get_preferences() -> Response:
    return ok({"channels": _profiles().preferences_view(bootstrap.contacts().get(principal().sub))})


@bp.route("/me/notification-preferences", methods=["PUT"], roles=ANYONE_SIGNED_IN)
def put_preferences() -> Response:
    body, who = parse(models.PreferencesIn), principal()
    channels = _profiles().set_preferences(
        bootstrap.contacts(), who.sub, who.role, who.store_id, body.channels, now_ms()
    )
    return ok({"channels": channels})


@bp.route("/me/contact", methods=["GET"], roles=ANYONE_SIGNED_IN)
def get_contact() -> Response:
    who = principal()
    return ok(_profiles().contact_view(bootstrap.contacts().get(who.sub), who.sub))


@bp.route("/me/contact", methods=["PUT"], roles=ANYONE_SIGNED_IN)
def put_contact() -> Response:
    body, who = parse(models.ContactIn), principal()
    profiles = _profiles()
    contact = profiles.save_contact(bootstrap.contacts(), who.sub, who.role, who.store_id, body.changes(), now_ms())
    return ok(profiles.contact_view(contact, who.sub))


@bp.route("/me/wechat-consents", methods=["POST"], roles=ANYONE_SIGNED_IN)
def post_consents() -> Response:
    body, who = parse(models.ConsentsIn), principal()
    request = IdempotentRequest.of(f"wechat-consents:{who.sub}", idempotency_key(), body.model_dump())
    overrides = bootstrap.ready().template_ids()
    stored = _profiles().record_consents(bootstrap.contacts(), who.sub, body.template_ids, overrides, request)
    return json_response(stored.body, stored.status)


@bp.route("/me/wechat-consents", methods=["GET"], roles=ANYONE_SIGNED_IN)
def get_consents() -> Response:
    return ok({"remaining": bootstrap.contacts().grants(principal().sub)})


@bp.route("/notification-templates", methods=["GET"], public=True)
def notification_templates() -> Response:
    """The WeChat template ids a mini-program asks consent for, per message kind."""
    from shared.notifications.templates import TEMPLATES, wechat_template_id

    overrides = bootstrap.ready().template_ids()
    return ok({"templates": [{"kind": k, "wechat_template_id": wechat_template_id(k, overrides)} for k in TEMPLATES]})
