"""Inventory: stock counts per SKU and location for merchant admins."""

from functions.inventory.routes import bp

__all__ = ["bp"]
