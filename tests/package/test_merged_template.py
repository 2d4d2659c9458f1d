"""The template `make package` writes: it lints clean, holds the table as the code expects it, and
gives every function what Settings demands of a deployed stage."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from infra.package import CFN_LINT_PASSING, Package
from shared.settings import Settings
from tests.package.template_environment import function_environments

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_finds_no_errors(packaged: Package):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged.template)], capture_output=True, text=True
    )
    assert result.returncode in CFN_LINT_PASSING, result.stdout + result.stderr


def test_the_table_has_its_keys_indexes_stream_and_ttl(merged_template: dict):
    # Given the one table of the merged template
    (table,) = [r for r in merged_template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    props = table["Properties"]
    # Then it has the keys, both global indexes, the stream the relay reads and the TTL attribute
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in props["GlobalSecondaryIndexes"]}
    assert indexes == {"gsi1": ["gsi1pk", "gsi1sk"], "gsi2": ["gsi2pk", "gsi2sk"]}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    # And a stack deletion or replacement keeps the data
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_every_function_gets_the_table_and_secrets_from_the_stack(merged_template: dict):
    # Given the merged template
    variables = merged_template["Globals"]["Function"]["Environment"]["Variables"]
    # Then the table comes from the stack and the secrets from NoEcho parameters, never a literal
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    for variable, parameter in (("JWT_SECRET", "JwtSecret"), ("PAYMENT_WEBHOOK_SECRET", "PaymentWebhookSecret")):
        assert variables[variable] == {"Ref": parameter}
        assert merged_template["Parameters"][parameter]["NoEcho"] is True
        assert merged_template["Parameters"][parameter]["MinLength"] >= 32
    # And with them, every function's environment passes the settings validation of a deployed stage
    environments = function_environments(merged_template)
    assert "APIHandler" in environments
    for name, environment in environments.items():
        settings = Settings.model_validate({**environment, "AWS_DEFAULT_REGION": "ap-east-1"})
        assert settings.stage == "dev", name
        assert settings.dynamodb_endpoint is None, name


def test_no_local_secret_is_packaged(packaged: Package):
    # Given the local stage's development secrets
    local = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["local"]["environment_variables"]
    secrets = [local["JWT_SECRET"].encode(), local["PAYMENT_WEBHOOK_SECRET"].encode()]
    # Then neither the template nor any file of the zip carries them
    template = packaged.template.read_bytes()
    assert not [s for s in secrets if s in template]
    with zipfile.ZipFile(packaged.zip) as archive:
        leaked = [n for n in archive.namelist() for s in secrets if s in archive.read(n)]
    assert leaked == []


def test_every_function_role_is_scoped_to_this_stacks_table(merged_template: dict):
    # Given the IAM roles Chalice made from .chalice/policy.json (autogen_policy is off in dev/prod)
    roles = [r for r in merged_template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        table_statement = next(s for s in statements if s.get("Sid") == "TableItemsAndIndexes")
        # Then DynamoDB access is this stack's table and its indexes, not every table of the account
        assert {"Fn::GetAtt": ["Table", "Arn"]} in table_statement["Resource"]
        for statement in statements:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            if any(action.startswith(("dynamodb:", "sqs:")) for action in actions):
                assert statement["Resource"] != "*", statement
