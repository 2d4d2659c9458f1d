"""The template `make package` writes for each deployed stage: it lints clean, holds the table as
the code expects it, gives every function what Settings demands of that stage (from parameters a
deployer cannot leave out and from the SSM parameters the deployer creates), keeps every secret
out of the Lambda environment, and carries the API, queue and topic settings of docs/operations.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.package import CFN_LINT_PASSING, DEPLOYED_STAGES, Package, stage_parameters
from shared.platform.secrets import SecretsUnavailable
from shared.platform.settings import load_settings
from tests.package.template_environment import (
    SECRET_STAND_IN,
    SECRET_VARIABLES,
    DeployRefused,
    function_environments,
    global_variables,
    own_variables,
    required_parameters,
    secret_parameters,
    ssm_holding,
)

ROOT = Path(__file__).resolve().parents[2]
# The SecureString parameters a deployer creates under the stage's SecretsPath, per stage: the
# API's two, and the live providers' two where the functions send live (prod).
API_SECRETS = {
    "JWT_SECRET": "jwt-secret",
    "KEYING_SECRET": "keying-secret",
    "PAYMENT_WEBHOOK_SECRET": "payment-webhook-secret",
}
LIVE_SECRETS = {"WECHAT_APP_SECRET": "wechat-app-secret", "SMS_API_KEY": "sms-api-key"}
# The public notification settings, still template parameters; WechatAppId is what
# NOTIFICATION_PROVIDER=live refuses to start without.
NOTIFICATION_PARAMETERS = {"WECHAT_APP_ID": "WechatAppId", "WECHAT_TEMPLATE_IDS": "WechatTemplateIds"}


def config() -> dict[str, Any]:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())


def secrets_path(merged_template: dict) -> str:
    return merged_template["Parameters"]["SecretsPath"]["Default"]


def ssm_for(merged_template: dict, names: dict[str, str]) -> dict[str, str]:
    """What the deployer put in Parameter Store: a stand-in value per parameter of `names`."""
    return {f"{secrets_path(merged_template)}/{name}": SECRET_STAND_IN for name in names.values()}


def resources(merged_template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in merged_template["Resources"].items() if r["Type"] == kind}


def refs(value: Any) -> set[str]:
    """Every name a CloudFormation value refers to (Ref, GetAtt, ${Name} in Sub), at any depth."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= set(re.findall(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}", text))
                found |= refs(inner[1]) if isinstance(inner, list) else set()
            else:
                found |= refs(inner)
        return found
    if isinstance(value, list):
        return set().union(*(refs(item) for item in value)) if value else set()
    return set()


def test_cfn_lint_finds_no_errors(packaged: Package):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged.template)], capture_output=True, text=True
    )
    assert result.returncode in CFN_LINT_PASSING, result.stdout + result.stderr


def test_the_table_has_its_keys_indexes_stream_and_ttl(merged_template: dict):
    # Given the one table of the merged template
    (table,) = resources(merged_template, "AWS::DynamoDB::Table").values()
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


def test_every_function_gets_the_table_from_the_stack_and_its_secrets_names_under_the_stages_path(
    packaged: Package, merged_template: dict
):
    # Given the merged template
    variables = global_variables(merged_template)
    # Then the table comes from the stack, never a literal
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    # And each secret is the NAME of a parameter under SecretsPath, whose default is the stage's
    # (from .chalice/config.json) and which a deployer may only set to a parameter path
    for variable, name in (API_SECRETS | LIVE_SECRETS).items():
        assert variables[variable + "_PARAM"] == {"Fn::Sub": f"${{SecretsPath}}/{name}"}
    assert secrets_path(merged_template) == f"/retail/{packaged.stage}"
    assert stage_parameters(packaged.stage)["SecretsPath"] == secrets_path(merged_template)
    pattern = merged_template["Parameters"]["SecretsPath"]["AllowedPattern"]
    assert re.fullmatch(pattern, "/retail/prod") and not re.fullmatch(pattern, "retail/prod")


def test_no_secret_is_resolved_into_an_environment_variable(merged_template: dict):
    # Given every variable of every function's environment: Globals and the function's own
    scopes = {"Globals": global_variables(merged_template), **own_variables(merged_template)}
    no_echo = {name for name, spec in merged_template.get("Parameters", {}).items() if spec.get("NoEcho")}
    for scope, variables in scopes.items():
        for variable, value in variables.items():
            # Then none refers to a NoEcho parameter (the template has none left)
            assert not refs(value) & no_echo, (scope, variable)
            # And none resolves a secret store's value at deploy time (a dynamic reference)
            assert "{{resolve:" not in json.dumps(value), (scope, variable)
        # And no secret variable itself is set: only the parameter names are
        assert not set(SECRET_VARIABLES) & variables.keys(), scope
    assert no_echo == set()


def test_every_function_passes_the_stages_settings_with_the_fewest_parameters_and_secrets(
    packaged: Package, merged_template: dict
):
    # Given the variables .chalice/config.json sets for the packaged stage
    stage_variables = config()["environment_variables"] | config()["stages"][packaged.stage]["environment_variables"]
    # And Parameter Store holding the stage's secrets, the live providers' only where they send live
    needed = API_SECRETS | (LIVE_SECRETS if packaged.stage == "prod" else {})
    store = ssm_holding(ssm_for(merged_template, needed))
    # When every function's environment is built from the merged template, deployed with a
    # stand-in for each parameter without a Default and the Default of every other one
    environments = function_environments(merged_template, required_parameters(merged_template))
    assert "APIHandler" in environments
    for name, environment in environments.items():
        # Then it holds the stage's variables, as Chalice wrote them into each function
        assert stage_variables.items() <= environment.items(), name
        # And it names every secret, each under the stage's path
        names = secret_parameters(environment)
        assert names.keys() == set(SECRET_VARIABLES), name
        assert {f"{secrets_path(merged_template)}/{n}" for n in (API_SECRETS | LIVE_SECRETS).values()} <= set(
            names.values()
        ), name
        assert all(n.startswith(secrets_path(merged_template) + "/") for n in names.values()), name
        # And it passes the settings validation of a deployed stage, its secrets read from SSM
        settings = load_settings(environment, fetch=store)
        assert settings.stage == packaged.stage, name
        assert settings.dynamodb_endpoint is None, name
        assert settings.jwt_secret.get_secret_value() == SECRET_STAND_IN, name
        # But not without one of the secrets the stage needs: the cold start names it
        for variable, parameter in needed.items():
            fewer = ssm_holding(ssm_for(merged_template, {k: v for k, v in needed.items() if k != variable}))
            with pytest.raises(SecretsUnavailable, match=f"{variable} \\(SSM parameter .*/{parameter}\\)"):
                load_settings(environment, fetch=fewer)


def test_a_live_stage_cannot_omit_the_providers_appid_and_needs_their_secrets_in_ssm(
    packaged: Package, merged_template: dict
):
    # Given the merged template: the public WeChat settings come from parameters
    variables, parameters = global_variables(merged_template), merged_template["Parameters"]
    for variable, parameter in NOTIFICATION_PARAMETERS.items():
        assert variables[variable] == {"Ref": parameter}
    providers = {env["NOTIFICATION_PROVIDER"] for env in function_environments(merged_template).values()}
    assert providers == ({"live"} if packaged.stage == "prod" else {"sink"})
    api_only = ssm_holding(ssm_for(merged_template, API_SECRETS))
    if providers == {"live"}:
        # Then a live stage's deploy without the AppID, or with it empty, is refused by
        # CloudFormation (not by every cold start later)
        assert "Default" not in parameters["WechatAppId"] and parameters["WechatAppId"]["MinLength"] >= 1
        with pytest.raises(DeployRefused, match="WechatAppId"):
            function_environments(merged_template, {})
        with pytest.raises(DeployRefused, match="WechatAppId"):
            function_environments(merged_template, {"WechatAppId": ""})
        # And with only the API's secrets in SSM its functions refuse to start, naming the providers'
        for environment in function_environments(merged_template).values():
            with pytest.raises(SecretsUnavailable, match=r"WECHAT_APP_SECRET .*SMS_API_KEY"):
                load_settings(environment, fetch=api_only)
    else:
        # Then a sink stage deploys without provider credentials, and its settings pass
        for environment in function_environments(merged_template, {}).values():
            assert load_settings(environment, fetch=api_only).notification_provider == "sink"


# WeChat Pay's public settings (docs/payments.md, "Keys and settings"), each a template parameter; its
# two secrets are SecureStrings under SecretsPath, needed only where PaymentProvider is wechatpay.
WECHATPAY_PARAMETERS = {
    "PAYMENT_PROVIDER": "PaymentProvider",
    "WECHATPAY_APPID": "WechatAppId",
    "WECHATPAY_MCHID": "WechatPayMchId",
    "WECHATPAY_MERCHANT_SERIAL": "WechatPayMerchantSerial",
    "WECHATPAY_PUBLIC_KEY_ID": "WechatPayPublicKeyId",
    "WECHATPAY_PUBLIC_KEY": "WechatPayPublicKey",
    "WECHATPAY_PLATFORM_CERTIFICATES": "WechatPayPlatformCertificates",
    "WECHATPAY_NOTIFY_URL": "WechatPayNotifyUrl",
    "WECHATPAY_PROFIT_SHARING": "WechatPayProfitSharing",
}
WECHATPAY_SECRETS = {"WECHATPAY_PRIVATE_KEY": "wechatpay-private-key", "WECHATPAY_APIV3_KEY": "wechatpay-apiv3-key"}


def test_a_stage_takes_wechat_pay_from_parameters_and_its_two_secrets_from_ssm(
    packaged: Package, merged_template: dict
):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.payments import wechatpay_crypto as crypto

    # Given the merged template: the public WeChat Pay settings come from parameters
    variables = global_variables(merged_template)
    for variable, parameter in WECHATPAY_PARAMETERS.items():
        assert variables[variable] == {"Ref": parameter}, variable
    api = API_SECRETS | (LIVE_SECRETS if packaged.stage == "prod" else {})
    # And by default the stage takes payments by the HMAC webhook alone, without WeChat Pay's secrets
    for environment in function_environments(merged_template).values():
        assert load_settings(environment, fetch=ssm_holding(ssm_for(merged_template, api))).payment_provider == "hmac"
    # When a deployer switches it to WeChat Pay with the public settings as parameters
    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    notify_url = "https://api.example.com/payments/wechatpay/notify"
    wechatpay = required_parameters(merged_template) | {
        "WechatAppId": "wx8888888888888888",
        "PaymentProvider": "wechatpay",
        "WechatPayMchId": "1900000109",
        "WechatPayMerchantSerial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "WechatPayPublicKeyId": "PUB_KEY_ID_0114232134912410000000000000",
        "WechatPayPublicKey": crypto.public_pem(platform_key),
        "WechatPayNotifyUrl": notify_url,
        "WechatPayProfitSharing": "1",
    }
    environments = function_environments(merged_template, wechatpay)
    # Then every function passes a deployed stage's settings with WeChat Pay, its secrets read from SSM
    store = ssm_holding(ssm_for(merged_template, api | WECHATPAY_SECRETS))
    for name, environment in environments.items():
        settings = load_settings(environment, fetch=store)
        assert settings.payment_provider == "wechatpay" and settings.wechatpay_profit_sharing, name
        assert (settings.wechatpay_appid, settings.wechatpay_mchid) == ("wx8888888888888888", "1900000109"), name
        assert settings.wechatpay_notify_url == notify_url and settings.wechatpay_public_key, name
        # But not without either WeChat Pay secret in SSM: the cold start names it
        for variable, parameter in WECHATPAY_SECRETS.items():
            fewer = ssm_holding(
                ssm_for(merged_template, api | {k: v for k, v in WECHATPAY_SECRETS.items() if k != variable})
            )
            with pytest.raises(SecretsUnavailable, match=f"{variable} \\(SSM parameter .*/{parameter}\\)"):
                load_settings(environment, fetch=fewer)
    # And CloudFormation refuses a provider it does not know, a callback not on https, a malformed id
    refused = {
        "PaymentProvider": "alipay",
        "WechatPayNotifyUrl": "http://api.example.com/payments/wechatpay/notify",
        "WechatPayMchId": "19000001x9",
        "WechatPayPublicKeyId": "0114232134912410000000000000",
        "WechatPayProfitSharing": "yes",
    }
    for parameter, value in refused.items():
        with pytest.raises(DeployRefused, match=parameter):
            function_environments(merged_template, wechatpay | {parameter: value})


def test_no_variable_the_stack_sets_is_a_literal_anywhere(merged_template: dict):
    # Given the variables the template takes from its parameters (the secrets' names among them)
    parameters = set(merged_template["Parameters"])
    from_parameters = {
        variable for variable, value in global_variables(merged_template).items() if refs(value) & parameters
    }
    assert {f"{v}_PARAM" for v in SECRET_VARIABLES} | {"WECHAT_APP_ID", *WECHATPAY_PARAMETERS} <= from_parameters
    # Then no function sets one itself (SAM would let its literal win over the parameter)
    for name, own in own_variables(merged_template).items():
        assert not from_parameters & own.keys(), name
    # And .chalice/config.json sets none for a deployed stage, nor for one of its functions, nor
    # any secret's value
    for stage in DEPLOYED_STAGES:
        stage_config = config()["stages"][stage]
        scopes = [config(), stage_config, *stage_config.get("lambda_functions", {}).values()]
        set_there = {v for scope in scopes for v in scope.get("environment_variables", {})}
        assert not set_there & (from_parameters | set(SECRET_VARIABLES)), stage


def test_no_local_secret_is_packaged(packaged: Package):
    # Given the local stage's development secrets
    local = config()["stages"]["local"]["environment_variables"]
    secrets = [local["JWT_SECRET"].encode(), local["PAYMENT_WEBHOOK_SECRET"].encode()]
    # Then neither the template nor any file of the zip carries them
    template = packaged.template.read_bytes()
    assert not [s for s in secrets if s in template]
    with zipfile.ZipFile(packaged.zip) as archive:
        leaked = [n for n in archive.namelist() for s in secrets if s in archive.read(n)]
    assert leaked == []


def function_roles(merged_template: dict) -> dict[str, dict]:
    """The IAM roles Chalice made from .chalice/policy.json, one per function."""
    used = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in resources(merged_template, "AWS::Serverless::Function").values()
    }
    return {name: merged_template["Resources"][name] for name in used}


def statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_every_function_role_is_scoped_to_this_stacks_table(merged_template: dict):
    # Given the IAM roles Chalice made from .chalice/policy.json (autogen_policy is off in dev/prod)
    roles = function_roles(merged_template)
    assert roles
    for role in roles.values():
        table_statement = next(s for s in statements(role) if s.get("Sid") == "TableItemsAndIndexes")
        # Then DynamoDB access is this stack's table and its indexes, not every table of the account
        assert {"Fn::GetAtt": ["Table", "Arn"]} in table_statement["Resource"]
        for statement in statements(role):
            if any(action.startswith(("dynamodb:", "sqs:", "ssm:", "kms:")) for action in actions(statement)):
                assert statement["Resource"] != "*", statement


def test_every_function_role_reads_only_the_stages_secrets(merged_template: dict):
    parameter_arn = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SecretsPath}/*"
    for name, role in function_roles(merged_template).items():
        by_sid = {s.get("Sid"): s for s in statements(role)}
        # Then it may read the parameters under SecretsPath, and no other parameter
        ssm = [s for s in statements(role) if any(a.startswith("ssm:") for a in actions(s))]
        assert ssm == [by_sid["StageSecretsInParameterStore"]], name
        assert sorted(ssm[0]["Action"]) == ["ssm:GetParameter", "ssm:GetParameters"]
        assert ssm[0]["Resource"] == {"Fn::Sub": parameter_arn}
        # And decrypt with a KMS key only through Parameter Store, for those parameters
        decrypt = by_sid["DecryptStageSecretsThroughParameterStoreOnly"]
        assert decrypt["Action"] == "kms:Decrypt"
        assert decrypt["Condition"]["StringEquals"] == {
            "kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}
        }
        assert decrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:PARAMETER_ARN": {"Fn::Sub": parameter_arn}}


def test_the_api_stage_is_throttled_per_stage_and_logs_each_request_as_json(packaged: Package, merged_template: dict):
    # Given the REST API of the merged template
    api = merged_template["Resources"]["RestAPI"]["Properties"]
    parameters = merged_template["Parameters"]
    # Then every method is throttled by the stage's rate and burst (.chalice/config.json)
    (method,) = api["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    wanted = stage_parameters(packaged.stage)
    for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        parameter = method[key]["Ref"]
        assert float(parameters[parameter]["Default"]) == wanted[parameter] > 0
    # And each request is one JSON line in an encrypted log group with a retention
    access = api["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    line = json.loads(access["Format"])
    assert {"requestId", "status", "httpMethod", "resourcePath", "responseLatency"} <= line.keys()
    assert not [v for v in line.values() if "header" in v.lower() or "authorizer" in v.lower()]  # no token
    # $context.error.message repeats the Authorization header for INCOMPLETE_SIGNATURE: never logged
    assert not [v for v in line.values() if "error.message" in v]
    logs = merged_template["Resources"]["ApiAccessLogs"]["Properties"]
    assert logs["RetentionInDays"] > 0 and logs["KmsKeyId"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}
    # And API Gateway may write logs at all: the account's CloudWatch role, set before the stage
    assert merged_template["Resources"]["RestAPI"]["DependsOn"] == "ApiGatewayAccount"
    assert api["TracingEnabled"] is True


def test_the_api_handler_has_reserved_concurrency_per_stage(packaged: Package, merged_template: dict):
    # Of checkov's CKV_AWS_115 (waived in .checkov.yaml for the event-driven functions), the part
    # that matters: the function taking outside traffic is capped per stage
    handler = merged_template["Resources"]["APIHandler"]["Properties"]
    wanted = config()["stages"][packaged.stage]["lambda_functions"]["api_handler"]["reserved_concurrency"]
    assert handler["ReservedConcurrentExecutions"] == wanted


def test_every_scheduled_function_has_a_dead_letter_queue_with_an_alarm(merged_template: dict):
    # Given the functions a schedule invokes (asynchronously)
    scheduled = {
        name
        for name, f in resources(merged_template, "AWS::Serverless::Function").items()
        if any(e["Type"] == "Schedule" for e in f["Properties"].get("Events", {}).values())
    }
    assert {"ExpireUnpaidOrders", "ReconcileFlashSales", "BirthdayGreetings"} <= scheduled
    # Then each sends a failed invocation, after Lambda's retries, to ScheduleFailures
    for name in scheduled:
        assert merged_template["Resources"][name]["Properties"]["DeadLetterQueue"] == {
            "Type": "SQS",
            "TargetArn": {"Fn::GetAtt": ["ScheduleFailures", "Arn"]},
        }, name
    # And a message there raises an alarm
    alarms = resources(merged_template, "AWS::CloudWatch::Alarm").values()
    assert [a for a in alarms if "ScheduleFailures" in refs(a["Properties"]["Dimensions"])]


def test_queues_and_the_alarm_topic_are_encrypted_at_rest(merged_template: dict):
    # Given the queues and the topic of the merged template
    queues = resources(merged_template, "AWS::SQS::Queue")
    assert {"NotificationsQueue", "NotificationsDLQ", "RelayFailures", "ScheduleFailures"} <= queues.keys()
    # Then every queue is encrypted with a KMS key
    for name, queue in queues.items():
        assert queue["Properties"].get("KmsMasterKeyId"), name
    # And the alarm topic with the stack's key, whose policy lets CloudWatch alarms publish to it
    (topic,) = resources(merged_template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "OperationsKey"}
    key = merged_template["Resources"]["OperationsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    principals = [s["Principal"] for s in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
