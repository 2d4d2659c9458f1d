"""Guides (导购) and the organisation: dealers, stores, guides and distributors for merchant admins,
binding and share links for members (API.md, "Commission and settlement"; docs/commission.md)."""

from functions.guides.routes import bp

__all__ = ["bp"]
