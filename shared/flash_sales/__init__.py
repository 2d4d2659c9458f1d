"""Flash sales: the sale, its stock shards and buying in it (docs/flash-sales.md)."""
