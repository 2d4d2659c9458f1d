"""The stream relay: outbox events from the table's stream to one queue per consumer
(shared/messaging/relay.py); the stream mapping is in infra/template.yaml."""

from functions.relay.handler import bp

__all__ = ["bp"]
