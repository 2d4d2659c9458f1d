"""The HTTP edge where no view runs: Chalice's own 405 / 415 / 400 answers in API.md's error shape
(shared.web.problems.chalice_errors_as_problems). Middleware of a blueprint applies to every route of
the app. Unknown paths never reach the app: API Gateway's Gateway Responses (infra/template.yaml) and
the local server (infra/local/api_server.py) answer them with 404."""

from chalice import Blueprint

from shared.web.problems import chalice_errors_as_problems

bp = Blueprint(__name__)
bp.register_middleware(chalice_errors_as_problems, "http")
