"""The zip Lambda runs: it imports `app` on its own (nothing from this checkout or its virtualenv)
and answers a request under the environment the merged template gives a deployed function."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from infra.package import ROOT, Package
from tests.package.template_environment import function_environments

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

event = {
    "resource": "/admin/products/{sku}",
    "path": "/admin/products/TEA-1",
    "httpMethod": "PUT",
    "headers": {"content-type": "application/json"},
    "multiValueQueryStringParameters": None,
    "pathParameters": {"sku": "TEA-1"},
    "stageVariables": None,
    "body": '{"name": "x", "price_fen": 1}',
    "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/admin/products/{sku}", "httpMethod": "PUT", "requestId": "req-1"},
}
response = app.app(event, Context())
outside = sorted(
    name for name, module in sys.modules.items()
    if "site-packages" in (getattr(module, "__file__", None) or "")
)
print(json.dumps({
    "routes": {path: sorted(methods) for path, methods in app.app.routes.items()},
    "response": response,
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
    packaged: Package, unzipped: Path, merged_template: dict
):
    # Given the environment the merged template gives the API handler in AWS, deployed with the
    # fewest parameters CloudFormation takes (secrets 32+ bytes, live credentials for a live
    # stage, no emulator endpoint), plus what the Lambda runtime adds
    environment = function_environments(merged_template)["APIHandler"] | {"POWERTOOLS_METRICS_DISABLED": "true"}
    # When the unzipped package is imported by an interpreter that sees nothing else
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_FROM_ZIP, str(unzipped)],
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
    assert seen["from_outside_the_zip"] == []
    # And a request runs through settings validation and auth to the API.md error body
    assert seen["response"]["statusCode"] == 401
    assert json.loads(seen["response"]["body"])["code"] == "UNAUTHENTICATED"
