"""Flash sales (秒杀): campaigns for merchant admins, the sale page, and buying in a sale."""

from functions.flash_sales.routes import bp

__all__ = ["bp"]
