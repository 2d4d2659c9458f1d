"""The local runtime: what stands in for AWS on a laptop (moto, serialised), the resources made
from `infra/template.yaml`, demo data, the event runner, and `make dev` itself. Never packaged."""
