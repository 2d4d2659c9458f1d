"""Secrets of a deployed stage come from SSM Parameter Store (shared/platform/secrets.py), read once
at cold start through the Powertools parameters utility; here on moto's SSM, in process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.platform import secrets
from shared.platform.settings import load_settings, reset_settings, settings

ROOT = Path(__file__).resolve().parents[2]
JWT = "j" * 40
KEYING = "k" * 40
WEBHOOK = "w" * 40
PATH = "/retail/dev"


def deployed(stage: str = "dev", **extra: str) -> dict[str, str]:
    """What infra/template.yaml gives a deployed function: parameter names, no secret values."""
    return {
        "STAGE": stage,
        "TABLE_NAME": "retail-dev-Table-ABC",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NOTIFICATION_PROVIDER": "sink",
        "JWT_SECRET_PARAM": f"{PATH}/jwt-secret",
        "KEYING_SECRET_PARAM": f"{PATH}/keying-secret",
        "PAYMENT_WEBHOOK_SECRET_PARAM": f"{PATH}/payment-webhook-secret",
        "WECHAT_APP_SECRET_PARAM": f"{PATH}/wechat-app-secret",
        "SMS_API_KEY_PARAM": f"{PATH}/sms-api-key",
        **extra,
    }


@pytest.fixture
def ssm() -> Iterator[object]:
    secrets.forget()
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        yield client
    secrets.forget()


def put(client: object, name: str, value: str) -> None:
    client.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)  # type: ignore[attr-defined]


def test_a_deployed_stage_reads_its_secrets_from_ssm_securestrings(ssm):
    # Given the two API secrets as SecureString parameters (moto encrypts them with aws/ssm)
    put(ssm, f"{PATH}/jwt-secret", JWT)
    put(ssm, f"{PATH}/keying-secret", KEYING)
    put(ssm, f"{PATH}/payment-webhook-secret", WEBHOOK)
    # When a dev function's settings are loaded from an environment that only names them
    current = load_settings(deployed())
    # Then the decrypted values are the settings' secrets
    assert current.jwt_secret.get_secret_value() == JWT
    assert current.payment_webhook_secret.get_secret_value() == WEBHOOK
    assert current.keying_secret is not None and current.keying_secret.get_secret_value() == KEYING
    # And a sink stage does not need (nor read) the live providers' secrets
    assert current.wechat_app_secret is None and current.sms_api_key is None


def test_the_cold_start_reads_ssm_once_and_settings_keep_the_values(ssm, monkeypatch):
    # Given a deployed function's environment and its parameters
    put(ssm, f"{PATH}/jwt-secret", JWT)
    put(ssm, f"{PATH}/keying-secret", KEYING)
    put(ssm, f"{PATH}/payment-webhook-secret", WEBHOOK)
    for key in ("JWT_SECRET", "PAYMENT_WEBHOOK_SECRET", "DYNAMODB_ENDPOINT", "SQS_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in deployed().items():
        monkeypatch.setenv(key, value)
    calls: list[list[str]] = []
    real = secrets.fetch_from_ssm

    def counted(names: list[str]) -> dict[str, str]:
        calls.append(names)
        return real(names)

    monkeypatch.setattr(secrets, "fetch_from_ssm", counted)
    reset_settings()
    try:
        # When settings are read at the first request and again later
        first = settings()
        put(ssm, f"{PATH}/jwt-secret", "rotated" * 6)
        again = settings()
    finally:
        reset_settings()
    # Then SSM was asked once, for both names in one call, and the process keeps what it read
    assert calls == [[f"{PATH}/jwt-secret", f"{PATH}/keying-secret", f"{PATH}/payment-webhook-secret"]]
    assert again is first and again.jwt_secret.get_secret_value() == JWT


def test_a_missing_parameter_fails_the_cold_start_naming_it(ssm):
    # Given only the JWT and keying secrets in SSM
    put(ssm, f"{PATH}/jwt-secret", JWT)
    put(ssm, f"{PATH}/keying-secret", KEYING)
    # When settings are loaded, then the error names the variable and the parameter that is missing
    with pytest.raises(
        secrets.SecretsUnavailable, match=f"PAYMENT_WEBHOOK_SECRET \\(SSM parameter {PATH}/payment-webhook-secret\\)"
    ):
        load_settings(deployed())


def test_a_live_stage_needs_the_providers_secrets_in_ssm(ssm):
    # Given prod's API secrets in SSM and the WeChat secret, but no SMS key
    for name, value in (
        ("jwt-secret", JWT),
        ("keying-secret", KEYING),
        ("payment-webhook-secret", WEBHOOK),
        ("wechat-app-secret", "wx-secret"),
    ):
        put(ssm, f"{PATH}/{name}", value)
    live = deployed("prod", NOTIFICATION_PROVIDER="live", WECHAT_APP_ID="wx123")
    # Then a live stage refuses to start, naming the SMS key's parameter
    with pytest.raises(secrets.SecretsUnavailable, match=f"SMS_API_KEY \\(SSM parameter {PATH}/sms-api-key\\)"):
        load_settings(live)
    # And with it, the providers get their secrets from SSM
    put(ssm, f"{PATH}/sms-api-key", "sms-key")
    current = load_settings(live)
    assert current.wechat_app_secret is not None and current.wechat_app_secret.get_secret_value() == "wx-secret"
    assert current.sms_api_key is not None and current.sms_api_key.get_secret_value() == "sms-key"


def test_ssm_refusing_the_call_fails_clearly():
    # Given an SSM that refuses (AccessDenied when the role lacks ssm:GetParameters, say)
    def refuse(names: list[str]) -> dict[str, str]:
        raise PermissionError("AccessDeniedException")

    # Then the cold start names the parameters and the cause
    with pytest.raises(secrets.SecretsUnavailable, match=r"reading .*jwt-secret.* failed: AccessDeniedException"):
        load_settings(deployed(), fetch=refuse)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_deployed_stage_refuses_a_secret_in_a_plain_variable(stage):
    # Given a deployed function whose environment carries a secret's value
    environment = deployed(stage) | {"JWT_SECRET": JWT}
    del environment["JWT_SECRET_PARAM"]
    # Then its settings refuse to load, before anything is read, and say what to do instead
    with pytest.raises(
        secrets.SecretsUnavailable, match=r"JWT_SECRET is set in the environment .* \(set JWT_SECRET_PARAM"
    ):
        load_settings(environment, fetch=lambda names: pytest.fail("must not read SSM"))


def test_a_deployed_stage_without_the_parameter_name_is_refused():
    environment = deployed()
    del environment["PAYMENT_WEBHOOK_SECRET_PARAM"]
    with pytest.raises(secrets.SecretsUnavailable, match="set PAYMENT_WEBHOOK_SECRET_PARAM"):
        load_settings(environment, fetch=lambda names: {n: JWT for n in names})


def test_the_local_stage_keeps_plain_dev_values_and_never_loads_the_ssm_client():
    # Given the local stage's plain variables (.chalice/config.json), in a fresh interpreter
    code = (
        "import sys\n"
        "from shared.platform.settings import load_settings\n"
        "s = load_settings({'STAGE': 'local', 'TABLE_NAME': 'retail-local', 'DYNAMODB_ENDPOINT': 'http://127.0.0.1:1',"
        " 'JWT_SECRET': 'dev-jwt-secret', 'PAYMENT_WEBHOOK_SECRET': 'dev-webhook-secret'})\n"
        "assert s.jwt_secret.get_secret_value() == 'dev-jwt-secret'\n"
        "loaded = ('boto3', 'aws_lambda_powertools.utilities.parameters')\n"
        "print(sorted(m for m in sys.modules if m.startswith(loaded)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    # Then the values are used as they are and neither Powertools' parameters nor boto3 is imported
    assert result.stdout.strip() == "[]"


def test_a_parameter_name_and_a_plain_value_together_are_refused():
    environment = {"STAGE": "test", "JWT_SECRET": "x" * 8, "JWT_SECRET_PARAM": "/retail/test/jwt-secret"}
    with pytest.raises(secrets.SecretsUnavailable, match="set JWT_SECRET or JWT_SECRET_PARAM, not both"):
        secrets.resolve(environment, {"JWT_SECRET"})


def test_derived_values_are_keyed_by_the_keying_secret_so_rotating_the_jwt_secret_keeps_them(ssm):
    # Given a deployed stage's secrets in SSM
    put(ssm, f"{PATH}/jwt-secret", JWT)
    put(ssm, f"{PATH}/keying-secret", KEYING)
    put(ssm, f"{PATH}/payment-webhook-secret", WEBHOOK)
    before = load_settings(deployed())
    # When the JWT secret is rotated
    put(ssm, f"{PATH}/jwt-secret", "rotated" * 6)
    secrets.forget()
    after = load_settings(deployed())
    # Then tokens are signed with the new secret, but the order-id and verification keys stay
    assert after.jwt_secret.get_secret_value() != before.jwt_secret.get_secret_value()
    for purpose in ("order-ids", "store-verification"):
        assert after.derivation_key(purpose) == before.derivation_key(purpose) == f"{purpose}:{KEYING}".encode()
    # And the purposes never share a key
    assert before.derivation_key("order-ids") != before.derivation_key("store-verification")


def test_a_deployed_stage_needs_its_keying_secret_and_a_local_one_falls_back_to_the_jwt_secret(ssm):
    # Given a deployed stage whose SSM lacks the keying secret
    put(ssm, f"{PATH}/jwt-secret", JWT)
    put(ssm, f"{PATH}/payment-webhook-secret", WEBHOOK)
    # Then its cold start names it
    with pytest.raises(secrets.SecretsUnavailable, match=f"KEYING_SECRET \\(SSM parameter {PATH}/keying-secret\\)"):
        load_settings(deployed())
    # And a short one is refused like the other secrets
    put(ssm, f"{PATH}/keying-secret", "short-but-8+")
    with pytest.raises(ValueError, match="keying_secret must be at least 32 bytes"):
        load_settings(deployed())
    # But the local stage keeps its ids as before: derived from its JWT secret
    local = load_settings(
        {
            "STAGE": "local",
            "TABLE_NAME": "retail-local",
            "DYNAMODB_ENDPOINT": "http://127.0.0.1:1",
            "JWT_SECRET": "dev-jwt-secret",
            "PAYMENT_WEBHOOK_SECRET": "dev-webhook-secret",
        }
    )
    assert local.keying_secret is None and local.derivation_key("order-ids") == b"order-ids:dev-jwt-secret"
