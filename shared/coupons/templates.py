"""Coupon templates for merchant admins: create, show with their books, list, edit.

An edit changes the template's text, windows or whether it is still issued; it never writes the
shards, so it cannot reset (or change at all) how many coupons are left — the bug of the systems
that keep `remaining` on the template and rewrite it from the form. docs/coupons.md, "Templates".
"""

from __future__ import annotations

from typing import Any

from shared.coupons.claims import memory
from shared.coupons.model import Template, TemplateDraft, TemplateEdit, UnknownMemberLevel, new_template_id
from shared.coupons.ports import CouponPorts, Cursor
from shared.kernel.errors import ConcurrentUpdate, NotFound, UnknownStore
from shared.kernel.idempotency import IdempotentRequest, StoredResponse
from shared.kernel.shards import shards_for_peak

EDIT_ATTEMPTS = 4


def create_template(
    draft: TemplateDraft, expected_peak_per_s: int | None, request: IdempotentRequest, ports: CouponPorts
) -> StoredResponse:
    """The template and its shards in one transaction: 201 with the template. The stores it names
    must exist (UnknownStore, 422), and the member levels it names must be levels of the merchant's
    membership rules now (UnknownMemberLevel, 422); a replay of the key returns the first answer."""
    if draft.terms.stores is not None:
        unknown = sorted(s for s in draft.terms.stores if not ports.stores.is_store(s))
        if unknown:
            raise UnknownStore("no such store", store_id=unknown[0], store_ids=unknown)
    if draft.member_levels:
        defined = ports.levels.names()
        strangers = sorted(draft.member_levels - set(defined))
        if strangers:
            raise UnknownMemberLevel("no such member level", member_levels=strangers, levels_defined=list(defined))
    now = ports.clock.now_ms()
    peak = expected_peak_per_s or ports.policy.default_peak_per_s
    template = Template.plan(draft, new_template_id(now), shards_for_peak(peak, draft.total), now)
    uow = ports.unit_of_work()
    uow.add_template(template)
    return uow.commit_once(request, StoredResponse(201, template.describe()))


def load(template_id: str, ports: CouponPorts) -> Template:
    found = ports.templates.get(template_id)
    if found is None:
        raise NotFound("no such coupon template", template_id=template_id)
    return found


def show_template(template_id: str, ports: CouponPorts) -> dict[str, Any]:
    """The template and its books: `counts` has total = remaining + claimed and claimed =
    available + locked + used + redeemed_offline + expired, read consistently."""
    template = load(template_id, ports)
    return {**template.describe(), "counts": ports.templates.tally(template).to_dict()}


def list_templates(limit: int, cursor: Cursor | None, ports: CouponPorts) -> tuple[list[dict], Cursor | None]:
    found, next_cursor = ports.templates.page(limit, cursor)
    return [template.describe() for template in found], next_cursor


def edit_template(template_id: str, edit: TemplateEdit, ports: CouponPorts) -> dict[str, Any]:
    """Apply `edit` to the latest template (conditional on the version read; read again and apply
    again if another edit came first). Coupons already claimed keep the terms they were claimed
    under; the remaining quantity is not touched."""
    for _ in range(EDIT_ATTEMPTS):
        before = load(template_id, ports)
        after = before.edited(edit, ports.clock.now_ms())
        uow = ports.unit_of_work()
        uow.replace_template(before, after)
        try:
            uow.commit()
        except ConcurrentUpdate:
            continue
        memory.forget(template_id)  # this process claims under the edit at once; others within template_cache_s
        return after.describe()
    raise ConcurrentUpdate("the template keeps changing; retry", template_id=template_id)
