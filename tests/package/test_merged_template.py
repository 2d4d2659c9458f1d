"""The template `make package` writes for each deployed stage: it lints clean, holds the table as
the code expects it, and gives every function what Settings demands of that stage, from
parameters a deployer cannot leave out."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import CFN_LINT_PASSING, DEPLOYED_STAGES, Package
from shared.platform.settings import Settings
from tests.package.template_environment import (
    SECRET_STAND_IN,
    DeployRefused,
    function_environments,
    global_variables,
    own_variables,
    required_parameters,
)

ROOT = Path(__file__).resolve().parents[2]
# The notification settings (shared/platform/settings.py) and the parameters that carry them; the first
# three are what NOTIFICATION_PROVIDER=live refuses to start without.
NOTIFICATION_PARAMETERS = {
    "WECHAT_APP_ID": "WechatAppId",
    "WECHAT_APP_SECRET": "WechatAppSecret",
    "SMS_API_KEY": "SmsApiKey",
    "WECHAT_TEMPLATE_IDS": "WechatTemplateIds",
}
LIVE_CREDENTIAL_VARIABLES = ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "SMS_API_KEY")
LIVE_CREDENTIALS = tuple(NOTIFICATION_PARAMETERS[v] for v in LIVE_CREDENTIAL_VARIABLES)


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
    variables = global_variables(merged_template)
    # Then the table comes from the stack and the secrets from NoEcho parameters, never a literal
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    for variable, parameter in (("JWT_SECRET", "JwtSecret"), ("PAYMENT_WEBHOOK_SECRET", "PaymentWebhookSecret")):
        assert variables[variable] == {"Ref": parameter}
        assert merged_template["Parameters"][parameter]["NoEcho"] is True
        assert merged_template["Parameters"][parameter]["MinLength"] >= 32


def test_every_function_passes_the_stages_settings_with_the_fewest_parameters_cloudformation_takes(
    packaged: Package, merged_template: dict
):
    # Given the variables .chalice/config.json sets for the packaged stage
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_variables = config["environment_variables"] | config["stages"][packaged.stage]["environment_variables"]
    # When every function's environment is built from the merged template, deployed with a
    # stand-in for each parameter without a Default and the Default of every other one
    environments = function_environments(merged_template, required_parameters(merged_template))
    assert "APIHandler" in environments
    for name, environment in environments.items():
        # Then it holds the stage's variables, as Chalice wrote them into each function
        assert stage_variables.items() <= environment.items(), name
        # And it passes the settings validation of a deployed stage (which a missing setting, or
        # one a parameter defaults to empty, fails at cold start)
        settings = Settings.model_validate(environment)
        assert settings.stage == packaged.stage, name
        assert settings.dynamodb_endpoint is None, name


def test_live_notification_credentials_are_parameters_a_live_stage_cannot_omit(
    packaged: Package, merged_template: dict
):
    # Given the merged template: the WeChat and SMS settings come from parameters, the secret
    # ones NoEcho
    variables, parameters = global_variables(merged_template), merged_template["Parameters"]
    for variable, parameter in NOTIFICATION_PARAMETERS.items():
        assert variables[variable] == {"Ref": parameter}
    assert parameters["WechatAppSecret"]["NoEcho"] is True and parameters["SmsApiKey"]["NoEcho"] is True
    providers = {env["NOTIFICATION_PROVIDER"] for env in function_environments(merged_template).values()}
    assert providers == ({"live"} if packaged.stage == "prod" else {"sink"})
    # When a deployer passes the two API secrets only
    only_api_secrets = {"JwtSecret": SECRET_STAND_IN, "PaymentWebhookSecret": SECRET_STAND_IN}
    if providers == {"live"}:
        # Then a live stage's deploy is refused by CloudFormation (not by every cold start later),
        # as is one that passes them empty
        for credential in LIVE_CREDENTIALS:
            with pytest.raises(DeployRefused, match=credential):
                function_environments(merged_template, only_api_secrets)
            with pytest.raises(DeployRefused, match=credential):
                blank = dict.fromkeys(LIVE_CREDENTIALS, SECRET_STAND_IN) | {credential: ""}
                function_environments(merged_template, only_api_secrets | blank)
    else:
        # Then a sink stage deploys without provider credentials, and its settings pass
        for environment in function_environments(merged_template, only_api_secrets).values():
            assert Settings.model_validate(environment).notification_provider == "sink"


def test_no_variable_a_parameter_sets_is_a_literal_anywhere(merged_template: dict):
    # Given the variables the template takes from its parameters (the secrets among them)
    from_parameters = {
        variable
        for variable, value in global_variables(merged_template).items()
        if isinstance(value, dict) and value.get("Ref") in merged_template["Parameters"]
    }
    assert {"JWT_SECRET", "PAYMENT_WEBHOOK_SECRET", *LIVE_CREDENTIAL_VARIABLES} <= from_parameters
    # Then no function sets one itself (SAM would let its literal win over the parameter)
    for name, own in own_variables(merged_template).items():
        assert not from_parameters & own.keys(), name
    # And .chalice/config.json sets none for a deployed stage, nor for one of its functions
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in DEPLOYED_STAGES:
        stage_config = config["stages"][stage]
        scopes = [config, stage_config, *stage_config.get("lambda_functions", {}).values()]
        assert not [v for scope in scopes for v in scope.get("environment_variables", {}) if v in from_parameters]


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
