"""Members: levels by growth value and points (docs/membership.md)."""
