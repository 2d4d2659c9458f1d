"""`make package`: the Lambda zip and the merged SAM template of a deployed stage, checked.

    python -m infra.package [--stage dev|prod] [--out build]

Writes `build/<stage>/deployment.zip` and `build/<stage>/sam.yaml` (Chalice's template with
`infra/template.yaml` merged in), then finishes the template for the stage:
- the Defaults of the stage's parameters from `stack_parameters` in `.chalice/config.json`
  (SecretsPath, the API throttling rate and burst);
- a dead-letter queue (ScheduleFailures) for every function a schedule invokes;
- in a stage whose functions send live notifications (prod), no Default for the provider's public
  AppID (`require_live_credentials`; its secrets are SSM parameters, read at cold start);
and checks it: cfn-lint (any error fails the build) and checkov with the waivers of `.checkov.yaml`
(any failed check fails the build; checkov runs from its own virtualenv, `.venv/tools/checkov`,
made on first use from `requirements-checkov.txt`: its pins conflict with ours). Deploy with
CloudFormation (docs/operations.md, "Deploy"). The `local` stage is refused: its secrets are the
dev values of API.md and must never reach AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
CHECKOV_REQUIREMENTS = ROOT / "requirements-checkov.txt"
# checkov pins boto3 (and packaging) below our pins, so it cannot share .venv: it gets its own.
CHECKOV_VENV = ROOT / ".venv" / "tools" / "checkov"
DEPLOYED_STAGES = ("dev", "prod")
# Chalice ships app.py, chalicelib/ and vendor/ only; these links put our packages in the zip
# (Chalice follows links in vendor/, DESIGN.md "Packaging").
VENDOR_LINKS = {"functions": "../functions", "shared": "../shared"}
PACKAGED_SOURCES = ("functions", "shared", "vendor")
# cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational; anything with
# the error bit (or 1, a crash) fails the build.
CFN_LINT_PASSING = (0, 4, 8, 12)
# What shared/platform/settings.py refuses NOTIFICATION_PROVIDER=live without, among the template's
# parameters (the two provider secrets are SSM parameters, which settings check at cold start).
# infra/template.yaml gives it an empty Default, so a stage that sends to the sink deploys without.
LIVE_NOTIFICATION_PARAMETERS = ("WechatAppId",)
# Where a failed asynchronous (scheduled) invocation goes: a queue of infra/template.yaml.
SCHEDULE_DEAD_LETTER_QUEUE = "ScheduleFailures"


class PackagingFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Package:
    stage: str
    directory: Path
    # checkov's counts for the template (passed, failed, skipped, parsing_errors), once scanned.
    checks: dict[str, int] | None = None

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


def strip_bytecode(archive: Path) -> int:
    """Drop `__pycache__` entries from the zip: chalice package imports app.py while it builds (and
    any other process importing the tree meanwhile writes bytecode into it), so some may have
    reached the zip after remove_bytecode. Returns how many went."""
    with zipfile.ZipFile(archive) as source:
        stale = [info for info in source.infolist() if "__pycache__/" in info.filename]
        if not stale:
            return 0
        rewritten = archive.with_suffix(".rewrite")
        with zipfile.ZipFile(rewritten, "w") as target:
            for info in source.infolist():
                if "__pycache__/" not in info.filename:
                    target.writestr(info, source.read(info))
    rewritten.replace(archive)
    return len(stale)


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
    strip_bytecode(target.zip)
    finish(target.template, stage)
    lint(target.template)
    return replace(target, checks=scan(target.template))


def finish(template: Path, stage: str) -> None:
    """What the merged template of `stage` needs beyond Chalice's merge, written in place."""
    merged = yaml.safe_load(template.read_text())
    set_stage_parameters(merged, stage_parameters(stage))
    add_schedule_dead_letter_queues(merged)
    require_live_credentials(merged)
    template.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))


def stage_parameters(stage: str, config: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """`stack_parameters` of the stage in .chalice/config.json (Chalice ignores the key)."""
    stages = json.loads(config.read_text())["stages"]
    return dict(stages[stage].get("stack_parameters", {}))


def set_stage_parameters(merged: dict[str, Any], values: dict[str, Any]) -> None:
    """Make each value the Default of the template parameter of that name; a deployer may still
    override it (`--parameter-overrides`)."""
    parameters = merged.get("Parameters", {})
    if unknown := sorted(set(values) - set(parameters)):
        raise PackagingFailed(f"stack_parameters names parameters the template lacks: {', '.join(unknown)}")
    for name, value in values.items():
        parameters[name]["Default"] = str(value) if parameters[name].get("Type") == "Number" else value


def functions(merged: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in merged["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def add_schedule_dead_letter_queues(merged: dict[str, Any]) -> list[str]:
    """Give every function a schedule invokes (asynchronously, so a failure would otherwise vanish
    after Lambda's retries) the stack's ScheduleFailures queue as its DeadLetterQueue. Returns
    the functions' logical ids."""
    if SCHEDULE_DEAD_LETTER_QUEUE not in merged["Resources"]:
        raise PackagingFailed(f"infra/template.yaml lacks the {SCHEDULE_DEAD_LETTER_QUEUE} queue")
    scheduled = [
        name
        for name, function in functions(merged).items()
        if any(event.get("Type") == "Schedule" for event in function["Properties"].get("Events", {}).values())
    ]
    for name in scheduled:
        merged["Resources"][name]["Properties"]["DeadLetterQueue"] = {
            "Type": "SQS",
            "TargetArn": {"Fn::GetAtt": [SCHEDULE_DEAD_LETTER_QUEUE, "Arn"]},
        }
    return scheduled


def require_live_credentials(merged: dict[str, Any]) -> bool:
    """If any function of the template sends live notifications, drop the Default of the
    provider's parameters: CloudFormation then refuses a deploy that leaves one out, where the
    empty default would pass and fail every cold start on settings. Returns whether it did."""
    shared = merged.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    providers = {
        {**shared, **function["Properties"].get("Environment", {}).get("Variables", {})}.get("NOTIFICATION_PROVIDER")
        for function in functions(merged).values()
    }
    if "live" not in providers:
        return False
    for name in LIVE_NOTIFICATION_PARAMETERS:
        parameter = merged["Parameters"][name]
        parameter.pop("Default", None)
        parameter["MinLength"] = max(parameter.get("MinLength", 0), 1)
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


def scan(template: Path) -> dict[str, int]:
    """checkov the merged template with the waivers of .checkov.yaml: a failed check fails the
    build. Returns checkov's counts (passed, failed, skipped)."""
    result = subprocess.run(
        [str(ensure_checkov()), "--config-file", str(CHECKOV_CONFIG), "-f", str(template), "-o", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise PackagingFailed(f"checkov did not report on {template}:\n{result.stdout}{result.stderr}") from exc
    reports = report if isinstance(report, list) else [report]
    counts = {key: sum(r["summary"][key] for r in reports) for key in ("passed", "failed", "skipped", "parsing_errors")}
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for r in reports
        for check in r["results"]["failed_checks"]
    ]
    if failed or counts["parsing_errors"] or result.returncode not in (0, 1):
        raise PackagingFailed(
            f"checkov found {counts['failed']} failed checks in {template} (fix them, or waive one in "
            f".checkov.yaml with the reason):\n" + "\n".join(failed) + result.stderr[-2000:]
        )
    waived = ", ".join(waived_checks())
    print(
        f"checkov: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped; waived: {waived}"
    )
    return counts


def waived_checks(config: Path = CHECKOV_CONFIG) -> list[str]:
    """The checks .checkov.yaml skips (each with its reason there)."""
    return list(yaml.safe_load(config.read_text()).get("skip-check", []))


def ensure_checkov(venv: Path = CHECKOV_VENV, requirements: Path = CHECKOV_REQUIREMENTS) -> Path:
    """checkov from its own virtualenv, (re)made when requirements-checkov.txt changes."""
    executable = venv / "bin" / "checkov"
    stamp = venv / ".requirements"
    wanted = requirements.read_text()
    if executable.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return executable
    print(f"installing checkov into {venv} (first use; about two minutes)", file=sys.stderr)
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)], cwd=ROOT, what="python -m venv")
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "-r", str(requirements)], cwd=ROOT, what="pip install checkov")
    stamp.write_text(wanted)
    return executable


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
    print(
        f"packaged {built.stage}: {built.zip} ({size_mb:.1f} MB), {built.template} "
        "(cfn-lint: no errors; checkov: no failed check)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
