"""The environment each function of a merged SAM template gets in AWS: SAM's Globals under the
function's own variables (where Chalice writes `.chalice/config.json`'s, per stage and per
function), the template's parameters as a deployer passes them, other CloudFormation references
replaced by stand-ins of the right shape (a table name, a stream ARN), and what the Lambda runtime
adds. The secrets are not in it: it names their SSM parameters, which `ssm_holding` stands in for."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Settings' secrets, each read from the SSM parameter that `<NAME>_PARAM` names.
from shared.platform.secrets import SECRET_VARIABLES

SECRET_STAND_IN = "s" * 32  # the shortest secret settings accept in a deployed stage
LAMBDA_RUNTIME = {"AWS_DEFAULT_REGION": "ap-east-1", "AWS_REGION": "ap-east-1"}


class DeployRefused(AssertionError):
    """CloudFormation would refuse these parameter values before creating anything."""


def required_parameters(template: dict) -> dict[str, str]:
    """The shortest `--parameter-overrides` a deployer can pass: a stand-in for every parameter
    without a Default (the others keep theirs)."""
    return {name: SECRET_STAND_IN for name, spec in template.get("Parameters", {}).items() if "Default" not in spec}


def parameter_values(template: dict, overrides: dict[str, str]) -> dict[str, str]:
    """What CloudFormation resolves each parameter to, checked as it checks them at deploy."""
    specs = template.get("Parameters", {})
    if unknown := sorted(set(overrides) - set(specs)):
        raise DeployRefused(f"parameters not in the template: {unknown}")
    values = {name: overrides.get(name, spec.get("Default")) for name, spec in specs.items()}
    if missing := sorted(name for name, value in values.items() if value is None):
        raise DeployRefused(f"parameters {missing} must have values")
    for name, value in values.items():
        spec = specs[name]
        value = values[name] = str(value)
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise DeployRefused(f"{name}: {value!r} is not a number") from None
            if number < spec.get("MinValue", number) or number > spec.get("MaxValue", number):
                raise DeployRefused(f"{name}: {value} outside MinValue/MaxValue")
        if len(value) < spec.get("MinLength", 0) or len(value) > spec.get("MaxLength", len(value)):
            raise DeployRefused(f"{name}: length {len(value)} outside MinLength/MaxLength")
        if "AllowedValues" in spec and value not in spec["AllowedValues"]:
            raise DeployRefused(f"{name}: not one of AllowedValues")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise DeployRefused(f"{name}: does not match AllowedPattern")
    return values


def resolve(value: Any, template: dict, parameters: dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name in template.get("Parameters", {}):
            return parameters[name]
        return f"stack-{name}-ABC123"
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"arn:aws:dynamodb:ap-east-1:123456789012:table/stack-{name}-ABC123/{attribute}"
    if "Fn::Sub" in value:  # "${Name}" placeholders, each resolved as a Ref
        return re.sub(
            r"\$\{([A-Za-z0-9]+)\}", lambda m: resolve({"Ref": m.group(1)}, template, parameters), value["Fn::Sub"]
        )
    raise AssertionError(f"no stand-in for {value}")


def global_variables(template: dict) -> dict[str, Any]:
    return template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})


def own_variables(template: dict) -> dict[str, dict[str, Any]]:
    """{logical id: the variables the function itself sets} (Chalice's, from config.json)."""
    return {
        name: resource["Properties"].get("Environment", {}).get("Variables", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_environments(template: dict, parameters: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """{logical id: environment in AWS} for every function, deployed with `parameters` (by default
    the fewest CloudFormation accepts); SAM merges Globals under each function's own variables."""
    values = parameter_values(template, required_parameters(template) if parameters is None else parameters)
    return {
        name: {key: resolve(value, template, values) for key, value in {**global_variables(template), **own}.items()}
        | LAMBDA_RUNTIME
        for name, own in own_variables(template).items()
    }


def secret_parameters(environment: dict[str, str]) -> dict[str, str]:
    """{secret variable: the SSM parameter its `<NAME>_PARAM` names} in one function's environment."""
    return {v: environment[v + "_PARAM"] for v in SECRET_VARIABLES if v + "_PARAM" in environment}


def ssm_holding(values: dict[str, str]) -> Callable[[list[str]], dict[str, str]]:
    """Parameter Store as a deployer filled it, for shared.platform.settings.load_settings: the
    values of the names it holds (a name it lacks is absent, as in GetParameters' answer)."""
    return lambda names: {name: values[name] for name in names if name in values}
