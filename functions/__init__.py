"""One Chalice Blueprint per folder; `app.py` registers them."""
