"""The stream relay, event routing and the queue-consumer runtime (docs/events.md)."""
