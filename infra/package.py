"""`make package`: the Lambda zip and the merged SAM template of a deployed stage, linted.

    python -m infra.package [--stage dev|prod] [--out build]

Writes `build/<stage>/deployment.zip` and `build/<stage>/sam.yaml` (Chalice's template with
`infra/template.yaml` merged in), then runs cfn-lint on the template and fails on any error.
In a stage whose functions send live notifications (prod), the provider credentials become
parameters without a default (`require_live_credentials`). Deploy with CloudFormation
(README.md, "Deploying"). The `local` stage is refused: its secrets are the dev values of API.md
and must never reach AWS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
DEPLOYED_STAGES = ("dev", "prod")
# Chalice ships app.py, chalicelib/ and vendor/ only; these links put our packages in the zip
# (Chalice follows links in vendor/, DESIGN.md "Packaging").
VENDOR_LINKS = {"functions": "../functions", "shared": "../shared"}
PACKAGED_SOURCES = ("functions", "shared", "vendor")
# cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational; anything with
# the error bit (or 1, a crash) fails the build.
CFN_LINT_PASSING = (0, 4, 8, 12)
# What shared/platform/settings.py refuses NOTIFICATION_PROVIDER=live without. infra/template.yaml gives
# these parameters an empty Default, so a stage that sends to the sink deploys without them.
LIVE_NOTIFICATION_PARAMETERS = ("WechatAppId", "WechatAppSecret", "SmsApiKey")


class PackagingFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Package:
    stage: str
    directory: Path

    @property
    def zip(self) -> Path:
        return self.directory / "deployment.zip"

    @property
    def template(self) -> Path:
        return self.directory / "sam.yaml"


def ensure_vendor_links(root: Path = ROOT) -> None:
    vendor = root / "vendor"
    vendor.mkdir(exist_ok=True)
    for name, target in VENDOR_LINKS.items():
        link = vendor / name
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.exists() or link.is_symlink():
            raise PackagingFailed(f"{link} should be a symlink to {target}; move it away and run again")
        link.symlink_to(target)


def remove_bytecode(root: Path = ROOT) -> int:
    """Stale .pyc files of deleted modules would otherwise ship; returns how many dirs went."""
    removed = 0
    for source in PACKAGED_SOURCES:
        base = root / source
        if not base.is_dir():
            continue
        for cache in sorted(base.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache, ignore_errors=True)
            removed += 1
    return removed


def package(stage: str, out: Path, root: Path = ROOT) -> Package:
    if stage not in DEPLOYED_STAGES:
        raise PackagingFailed(
            f"stage {stage!r} is not packaged: only {', '.join(DEPLOYED_STAGES)} are "
            "(the local stage carries development secrets)"
        )
    if not os.environ.get("AWS_DEFAULT_REGION"):
        raise PackagingFailed("set AWS_DEFAULT_REGION (chalice package needs one, even offline)")
    ensure_vendor_links(root)
    remove_bytecode(root)
    target = Package(stage, out / stage)
    if target.directory.exists():
        shutil.rmtree(target.directory)
    target.directory.parent.mkdir(parents=True, exist_ok=True)
    chalice = Path(sys.executable).with_name("chalice")
    _run(
        [
            str(chalice),
            "package",
            "--stage",
            stage,
            "--pkg-format",
            "cloudformation",
            "--template-format",
            "yaml",
            "--merge-template",
            str(TEMPLATE),
            str(target.directory),
        ],
        cwd=root,
        what="chalice package",
    )
    for produced in (target.zip, target.template):
        if not produced.is_file():
            raise PackagingFailed(f"chalice package did not write {produced}")
    require_live_credentials(target.template)
    lint(target.template)
    return target


def require_live_credentials(template: Path) -> bool:
    """If any function of the template sends live notifications, drop the Default of the
    credentials' parameters: CloudFormation then refuses a deploy that leaves one out, where the
    empty default would pass and fail every cold start on settings. Returns whether it did."""
    merged = yaml.safe_load(template.read_text())
    shared = merged.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    providers = {
        {**shared, **resource["Properties"].get("Environment", {}).get("Variables", {})}.get("NOTIFICATION_PROVIDER")
        for resource in merged["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    if "live" not in providers:
        return False
    for name in LIVE_NOTIFICATION_PARAMETERS:
        parameter = merged["Parameters"][name]
        parameter.pop("Default", None)
        parameter["MinLength"] = max(parameter.get("MinLength", 0), 1)
    template.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))
    return True


def lint(template: Path) -> None:
    """cfn-lint the merged template: errors fail the build, warnings are printed."""
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(template)], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode not in CFN_LINT_PASSING:
        raise PackagingFailed(f"cfn-lint found errors in {template}:\n{output}")
    if output:
        print(output)


def _run(argv: list[str], cwd: Path, what: str) -> None:
    result = subprocess.run(argv, cwd=cwd)
    if result.returncode != 0:
        raise PackagingFailed(f"{what} exited with {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="package a deployed stage into build/<stage>")
    parser.add_argument("--stage", default="dev", help="dev or prod (local is refused)")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    try:
        built = package(args.stage, args.out.resolve())
    except PackagingFailed as exc:
        print(f"make package: {exc}", file=sys.stderr)
        return 1
    size_mb = built.zip.stat().st_size / 1e6
    print(f"packaged {built.stage}: {built.zip} ({size_mb:.1f} MB), {built.template} (cfn-lint: no errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
