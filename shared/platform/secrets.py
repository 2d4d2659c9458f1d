"""Secrets of a deployed stage: read from SSM Parameter Store once per cold start.

In AWS the environment carries only each secret's parameter NAME (`JWT_SECRET_PARAM=/retail/prod/jwt-secret`,
set by infra/template.yaml from its `SecretsPath`); the value is a SecureString, fetched with the
Powertools parameters utility (one GetParameters call, decrypted) when settings are first read and
then cached with them for the life of the process. The local and test stages keep their values in
plain variables (`JWT_SECRET`, .chalice/config.json), and a deployed stage refuses
those: a secret there must never sit in the Lambda environment (docs/operations.md).

Powertools (and boto3 with it) is imported only when a parameter is to be read, so the local
stack and every cold import of app.py do not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

# Settings' secret variables; `<NAME>_PARAM` names the SSM parameter that holds `<NAME>`.
SECRET_VARIABLES = (
    "JWT_SECRET",
    "KEYING_SECRET",
    "PAYMENT_WEBHOOK_SECRET",
    "WECHAT_APP_SECRET",
    "SMS_API_KEY",
    "WECHATPAY_PRIVATE_KEY",
    "WECHATPAY_APIV3_KEY",
)
PARAM_SUFFIX = "_PARAM"
DEPLOYED_STAGES = ("dev", "prod")
# How long Powertools keeps a value. Settings are cached for the process, so each cold start reads
# a secret once; this only bounds a re-read after reset_settings().
CACHE_S = 300

# names -> {name: value} for the names that exist (a missing one is simply absent).
Fetch = Callable[[list[str]], dict[str, str]]


class SecretsUnavailable(RuntimeError):
    """A secret this stage needs cannot be read: the cold start fails with this message."""


def param_variable(variable: str) -> str:
    return variable + PARAM_SUFFIX


def resolve(environ: Mapping[str, str], needed: Collection[str], fetch: Fetch | None = None) -> dict[str, str]:
    """`environ` with `<NAME>` set to the value of the parameter `<NAME>_PARAM` names, for every
    needed secret (the `_PARAM` variables are dropped; a secret not needed is not read). Raises
    SecretsUnavailable naming every needed secret without a value, and any plain secret variable
    in a deployed stage."""
    wanted = parameters_to_read(environ, needed)
    param_variables = {param_variable(variable) for variable in SECRET_VARIABLES}
    resolved = {key: value for key, value in environ.items() if key not in param_variables}
    if not wanted:
        return resolved
    names = sorted(set(wanted.values()))
    try:
        values = (fetch or fetch_from_ssm)(names)
    except Exception as exc:  # AccessDenied, a throttled or unreachable SSM: the message says which names
        raise SecretsUnavailable(f"reading {', '.join(names)} from SSM Parameter Store failed: {exc}") from exc
    missing = [f"{variable} (SSM parameter {name})" for variable, name in wanted.items() if not values.get(name)]
    if missing:
        raise SecretsUnavailable(
            f"not found or empty in SSM Parameter Store: {', '.join(missing)}; create them as SecureString "
            "(docs/operations.md, 'Configuration and secrets')"
        )
    resolved.update({variable: values[name] for variable, name in wanted.items()})
    return resolved


def parameters_to_read(environ: Mapping[str, str], needed: Collection[str]) -> dict[str, str]:
    """{secret variable: its SSM parameter's name} for the needed secrets the environment names;
    raises SecretsUnavailable for what no stage may do (and what a deployed stage must not)."""
    stage = environ.get("STAGE", "")
    deployed = stage in DEPLOYED_STAGES
    problems: list[str] = []
    wanted: dict[str, str] = {}
    for variable in SECRET_VARIABLES:
        parameter = environ.get(param_variable(variable), "").strip()
        plain = variable in environ
        if plain and deployed:
            problems.append(
                f"{variable} is set in the environment of the {stage} stage: deployed stages read secrets "
                f"from SSM Parameter Store (set {param_variable(variable)} to the parameter's name)"
            )
        elif plain and parameter:
            problems.append(f"set {variable} or {param_variable(variable)}, not both")
        elif variable in needed and parameter:
            wanted[variable] = parameter
        elif variable in needed and deployed:
            problems.append(f"{variable} is needed: set {param_variable(variable)} to its SSM parameter's name")
    if problems:
        raise SecretsUnavailable("; ".join(problems))
    return wanted


def fetch_from_ssm(names: list[str]) -> dict[str, str]:
    """SecureString values by name, decrypted, through the Powertools parameters utility (one
    GetParameters call for up to 10 names) and its cache."""
    from aws_lambda_powertools.utilities import parameters

    values = parameters.get_parameters_by_name(
        {name: {} for name in names}, decrypt=True, max_age=CACHE_S, raise_on_error=False
    )
    values.pop("_errors", None)  # the names SSM does not have: resolve() reports them
    return values


def forget() -> None:
    """Drop cached values and the SSM client (tests, and the local runner between stacks)."""
    import sys

    if "aws_lambda_powertools.utilities.parameters" not in sys.modules:
        return
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    parameters.clear_caches()
    DEFAULT_PROVIDERS.pop("ssm", None)
