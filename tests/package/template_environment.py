"""The environment each function of a merged SAM template gets in AWS, with CloudFormation
references replaced by stand-ins of the right shape (a table name, a stream ARN, parameter values)."""

from __future__ import annotations

import re
from typing import Any

SECRET_STAND_IN = "s" * 32  # the shortest value the template's MinLength lets a deployer pass


def resolve(value: Any, template: dict) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name in template.get("Parameters", {}):
            return SECRET_STAND_IN
        return f"stack-{name}-ABC123"
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"arn:aws:dynamodb:ap-east-1:123456789012:table/stack-{name}-ABC123/{attribute}"
    if "Fn::Sub" in value:  # "${Name}" placeholders, each resolved as a Ref
        return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: resolve({"Ref": m.group(1)}, template), value["Fn::Sub"])
    raise AssertionError(f"no stand-in for {value}")


def function_environments(template: dict) -> dict[str, dict[str, str]]:
    """{logical id: environment} for every function; SAM merges Globals under each function's own."""
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        own = resource["Properties"].get("Environment", {}).get("Variables", {})
        found[name] = {key: resolve(value, template) for key, value in {**global_vars, **own}.items()}
    return found
