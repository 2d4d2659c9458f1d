"""The web edge: what turns an API Gateway request into a service call and back. Chalice-facing."""
