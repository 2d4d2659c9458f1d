"""Settings, observability and the composition root, which alone wires stores to services (docs/architecture.md)."""
