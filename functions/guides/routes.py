"""API.md "Commission and settlement": `POST /guides/{guide_id}/bind`; and what docs/openapi.yaml adds:
the organisation for merchant admins (dealers, stores, guides, distributors), a member's binding,
its reassignment with an audit trail, and share-link visits."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalice import Response

from shared.kernel.clock import iso
from shared.kernel.errors import MalformedRequest, NotFound
from shared.kernel.identity import Role
from shared.kernel.lazy import lazy_import
from shared.platform import bootstrap
from shared.web.api import Api, decode_cursor, encode_cursor, ok, parse, principal, query_int, query_str

if TYPE_CHECKING:
    from functions.guides import models
    from shared.guides import model as guides_model
else:  # loaded on first use, not at cold start (shared/kernel/lazy.py)
    models = lazy_import("functions.guides.models")
    guides_model = lazy_import("shared.guides.model")


bp = Api(__name__)

ADMIN = [Role.MERCHANT_ADMIN]
MEMBER_ID = re.compile(r"[!-~]{1,128}")


def _member(value: str) -> str:
    if not MEMBER_ID.fullmatch(value):
        raise NotFound("no such member", id=value[:64])
    return value


def _page(items: list[Any], cursor: dict[str, Any] | None) -> Response:
    return ok({"items": [i.view() for i in items], "next_cursor": encode_cursor(cursor)})


def _paging() -> tuple[int, dict[str, Any] | None]:
    return query_int("limit", 50, low=1, high=100), decode_cursor(query_str("cursor"))


def binding_view(binding: guides_model.Binding) -> dict[str, Any]:
    return {
        "customer_id": binding.customer_id,
        "guide_id": binding.guide_id,
        "store_id": binding.store_id,
        "dealer_id": binding.dealer_id,
        "bound_at": iso(binding.bound_at_ms),
        "expires_at": iso(binding.expires_at_ms) if binding.expires_at_ms is not None else None,
    }


def change_view(change: guides_model.BindingChange) -> dict[str, Any]:
    return {
        "kind": change.kind.value,
        "from_guide_id": change.from_guide_id,
        "to_guide_id": change.to_guide_id,
        "by": change.by,
        "at": iso(change.at_ms),
        "reason": change.reason,
    }


# -- the organisation (merchant admins) ---------------------------------------------------------
@bp.route("/admin/dealers/{dealer_id}", methods=["PUT"], roles=ADMIN)
def put_dealer(dealer_id: str) -> Response:
    dealer = parse(models.DealerIn).to_dealer(models.path_id(dealer_id, "dealer"))
    return ok(bootstrap.org_admin().put_dealer(dealer).view())


@bp.route("/admin/dealers", methods=["GET"], roles=ADMIN)
def list_dealers() -> Response:
    return _page(*bootstrap.org_admin().list_dealers(*_paging()))


@bp.route("/admin/stores/{store_id}", methods=["PUT"], roles=ADMIN)
def put_store(store_id: str) -> Response:
    store = parse(models.StoreIn).to_store(models.path_id(store_id, "store"))
    return ok(bootstrap.org_admin().put_store(store).view())


@bp.route("/admin/stores", methods=["GET"], roles=ADMIN)
def list_stores() -> Response:
    return _page(*bootstrap.org_admin().list_stores(*_paging()))


@bp.route("/admin/guides/{guide_id}", methods=["PUT"], roles=ADMIN)
def put_guide(guide_id: str) -> Response:
    guide = parse(models.GuideIn).to_guide(models.path_id(guide_id, "guide"))
    return ok(bootstrap.org_admin().put_guide(guide).view())


@bp.route("/admin/guides", methods=["GET"], roles=ADMIN)
def list_guides() -> Response:
    store_id = query_str("store_id")
    if store_id is not None and not models.PARTY_ID.fullmatch(store_id):
        raise MalformedRequest("?store_id= is a store id", param="store_id")
    limit, cursor = _paging()
    return _page(*bootstrap.org_admin().list_guides(store_id, limit, cursor))


@bp.route("/admin/distributors/{member_id}", methods=["PUT"], roles=ADMIN)
def put_distributor(member_id: str) -> Response:
    body = parse(models.DistributorIn)
    distributor = bootstrap.org_admin().put_distributor(
        _member(member_id), body.name, body.parent_id, body.payout_account
    )
    return ok(distributor.view())


@bp.route("/admin/distributors", methods=["GET"], roles=ADMIN)
def list_distributors() -> Response:
    return _page(*bootstrap.org_admin().list_distributors(*_paging()))


# -- binding --------------------------------------------------------------------------------------
@bp.route("/guides/{guide_id}/bind", methods=["POST"], roles=[Role.CUSTOMER])
def bind(guide_id: str) -> Response:
    """From the guide's QR scene. Binding to the same guide again answers the same binding."""
    binding = bootstrap.member_binding().bind(models.path_id(guide_id, "guide"), principal().sub)
    return ok(binding_view(binding))


@bp.route("/me/binding", methods=["GET"], roles=[Role.CUSTOMER])
def my_binding() -> Response:
    binding, _ = bootstrap.member_binding().binding_of(principal().sub)
    if binding is None:
        raise NotFound("not bound to a guide")
    return ok(binding_view(binding))


@bp.route("/admin/bindings/{customer_id}", methods=["PUT"], roles=ADMIN)
def reassign(customer_id: str) -> Response:
    body = parse(models.ReassignIn)
    binding = bootstrap.member_binding().reassign(_member(customer_id), body.guide_id, principal().sub, body.reason)
    return ok(binding_view(binding))


@bp.route("/admin/bindings/{customer_id}", methods=["GET"], roles=ADMIN)
def show_binding(customer_id: str) -> Response:
    binding, history = bootstrap.member_binding().binding_of(_member(customer_id))
    if binding is None and not history:
        raise NotFound("the member was never bound", customer_id=customer_id[:64])
    return ok(
        {
            "binding": binding_view(binding) if binding is not None else None,
            "history": [change_view(c) for c in history],
        }
    )


@bp.route("/me/share-visits", methods=["POST"], roles=[Role.CUSTOMER])
def share_visit() -> Response:
    """The storefront reports the `?share=` of the link the member opened; the last one within
    24 hours credits its sharer on the member's orders."""
    visit = bootstrap.member_binding().record_share(principal().sub, parse(models.ShareVisitIn).share)
    return ok({"share": visit.sharer_id, "at": iso(visit.at_ms)})
