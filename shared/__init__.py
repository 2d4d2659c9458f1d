"""The shared core of the suite: domain code (pure), web glue (Chalice-facing) and data access (AWS)."""
