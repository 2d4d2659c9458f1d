"""Notifications: the consumer of order and stock events, birthday greetings, and the people's
own settings and messages (API.md, "Notifications"; docs/notifications.md)."""

from functions.notifications import handlers, routes  # noqa: F401  (register their handlers on bp)
from functions.notifications.blueprint import bp

__all__ = ["bp"]
