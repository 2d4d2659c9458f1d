"""The zip Lambda runs: it imports `app` on its own (nothing from this checkout or its virtualenv)
and answers requests under the environment the merged template gives a deployed function, its
secrets read from Parameter Store (the emulator's SSM) at the first request."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3

from infra.package import ROOT, Package
from shared.kernel.identity import Role
from shared.web.auth import issue_token
from tests.package.template_environment import LAMBDA_RUNTIME, function_environments, secret_parameters

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}

# Run by `python -I -S`: no site-packages, no PYTHONPATH, no current directory; the task root
# (the unzipped package) first, then only the standard library, as in the Lambda runtime.
IMPORT_FROM_ZIP = """
import json, sys
task_root = sys.argv[1]
sys.path.insert(0, task_root)
import app

class Context:
    function_name = "APIHandler"
    aws_request_id = "req-1"
    memory_limit_in_mb = 1024
    def get_remaining_time_in_millis(self):
        return 10_000

def event(authorization):
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization
    return {
    "resource": "/admin/products/{sku}",
    "path": "/admin/products/TEA-1",
    "httpMethod": "PUT",
    "headers": headers,
    "multiValueQueryStringParameters": None,
    "pathParameters": {"sku": "TEA-1"},
    "stageVariables": None,
    "body": '{"name": "x", "price_fen": 1}',
    "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/admin/products/{sku}", "httpMethod": "PUT", "requestId": "req-1"},
    }

responses = [app.app(event(authorization), Context()) for authorization in json.loads(sys.argv[2])]
outside = sorted(
    name for name, module in sys.modules.items()
    if "site-packages" in (getattr(module, "__file__", None) or "")
)
print(json.dumps({
    "routes": {path: sorted(methods) for path, methods in app.app.routes.items()},
    "responses": responses,
    "from_outside_the_zip": outside,
}))
"""


def source_routes() -> dict[str, list[str]]:
    code = "import app, json; print(json.dumps({p: sorted(m) for p, m in app.app.routes.items()}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_zip_holds_our_packages_and_not_the_local_runtime_or_tests(packaged: Package):
    # Given the packaged zip
    names = zipfile.ZipFile(packaged.zip).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    # Then the app, its blueprints and shared code are at the task root, via the vendor/ links
    assert {"app.py", "functions", "shared"} <= tops
    assert "functions/catalog/routes.py" in names and "shared/web/api.py" in names
    # And nothing that must stay on the laptop went in
    assert not tops & {"infra", "tests", "bench", "vendor", ".chalice", "build"}
    assert not [name for name in names if "__pycache__" in name]


def test_app_imports_from_the_zip_alone_and_answers_with_deployed_settings(
    packaged: Package, unzipped: Path, merged_template: dict, moto_endpoint: str
):
    # Given the environment the merged template gives the API handler in AWS, deployed with the
    # fewest parameters CloudFormation takes (the live AppID for a live stage, no emulator
    # endpoint), plus what the Lambda runtime adds, and SSM at the emulator
    environment = function_environments(merged_template)["APIHandler"] | {"POWERTOOLS_METRICS_DISABLED": "true"}
    environment |= FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL_SSM": moto_endpoint}
    # And the stage's secrets as SecureString parameters where the environment names them
    ssm = boto3.client(
        "ssm", region_name=LAMBDA_RUNTIME["AWS_REGION"], endpoint_url=moto_endpoint, **lowercase(FAKE_CREDENTIALS)
    )
    values = {
        variable: f"{packaged.stage}-{variable.lower()}-from-ssm-{'x' * 16}"
        for variable in secret_parameters(environment)
    }
    for variable, name in secret_parameters(environment).items():
        ssm.put_parameter(Name=name, Value=values[variable], Type="SecureString", Overwrite=True)
    # When the unzipped package is imported by an interpreter that sees nothing else, and asked to
    # change a product with no token, a customer's token signed with the SSM secret, and one
    # signed with another key
    authorizations = [
        None,
        "Bearer " + issue_token(values["JWT_SECRET"], "c-1", Role.CUSTOMER),
        "Bearer " + issue_token("another-key-" + "y" * 32, "c-1", Role.CUSTOMER),
    ]
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_FROM_ZIP, str(unzipped), json.dumps(authorizations)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=unzipped,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Then every route of the source app is there, with its methods (the source read afresh, as
    # the tree may have changed since this session first imported it)
    assert seen["routes"] == source_routes()
    # And boto3 and the Powertools parameters utility came from the zip, like everything else
    assert seen["from_outside_the_zip"] == []
    # And requests run through settings validation (secrets from SSM) and auth to the API.md
    # error bodies: no token 401; the token signed with the SSM secret is authenticated (a
    # customer may not change products: 403); the other key's is not
    answers = [(r["statusCode"], json.loads(r["body"])["code"]) for r in seen["responses"]]
    assert answers == [(401, "UNAUTHENTICATED"), (403, "FORBIDDEN"), (401, "UNAUTHENTICATED")]


def lowercase(credentials: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in credentials.items()}
