"""Settings, observability and the composition root, the only place that wires data stores into services (docs/architecture.md)."""
