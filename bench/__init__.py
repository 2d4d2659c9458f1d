"""`make bench`: the project's numbers, one section module per subject (see __main__.py)."""
