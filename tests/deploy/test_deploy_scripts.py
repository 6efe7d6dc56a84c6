"""The deploy's small scripts against fake ``aws``, ``docker`` and ``cdk`` commands.

check-image-scan (HIGH/CRITICAL findings fail the deploy), promote-image (prod gets dev's
digest, never a rebuild) and cdk-main-stack (what CI passes as context). The fakes answer from
a scenario and record every call, as in test_run_migrations.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.deploy.test_run_migrations import FAKE_AWS

SCRIPTS = REPO_ROOT / ".github" / "scripts"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
DEV = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-dev"
PROD = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-prod"
SHA = "0f" * 20  # a full commit sha (40 hex digits)
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the scripts need jq")

# docker and cdk: record the call, answer nothing (the fake aws says what ECR holds after).
FAKE_RECORDER = """\
import json, os, sys
call = {"operation": "%s " + " ".join(sys.argv[1:3]), "args": sys.argv[1:]}
with open(os.environ["FAKE_AWS_CALLS"], "a") as calls:
    calls.write(json.dumps(call) + "\\n")
"""


def run(
    tmp_path: Path, script: str, args: list[str], scenario: dict[str, Any], **env: str
) -> tuple[int, str, list[dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (
        ("aws", FAKE_AWS),
        ("docker", FAKE_RECORDER % "docker"),
        ("cdk", FAKE_RECORDER % "cdk"),
    ):
        fake = bin_dir / name
        fake.write_text(f"#!{sys.executable}\n{text}")
        fake.chmod(0o755)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    calls_file = tmp_path / "calls.jsonl"
    calls_file.write_text("")
    result = subprocess.run(
        [str(SCRIPTS / script), *args],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_AWS_SCENARIO": str(tmp_path / "scenario.json"),
            "FAKE_AWS_CALLS": str(calls_file),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
    return result.returncode, result.stdout + result.stderr, calls


def operations(calls: list[dict[str, Any]]) -> list[str]:
    return [c["operation"] for c in calls]


# -- check-image-scan ---------------------------------------------------------------------


def scan(counts: dict[str, int], findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "ecr wait": {"json": {}},
        "ecr describe-image-scan-findings": {
            "json": {
                "imageScanFindings": {
                    "findingSeverityCounts": counts,
                    "findings": findings or [],
                }
            }
        },
    }


def test_a_scan_with_low_and_medium_findings_only_passes(tmp_path: Path) -> None:
    code, output, calls = run(
        tmp_path, "check-image-scan", ["wxhub-dev", DIGEST], scan({"LOW": 3, "MEDIUM": 1})
    )
    assert code == 0, output
    wait = calls[0]["args"]
    assert wait[:3] == ["ecr", "wait", "image-scan-complete"]
    assert f"imageDigest={DIGEST}" in wait


@pytest.mark.parametrize("severity", ["HIGH", "CRITICAL"])
def test_a_high_or_critical_finding_fails_the_deploy_and_is_named(
    tmp_path: Path, severity: str
) -> None:
    finding = {
        "name": "CVE-2026-0001",
        "severity": severity,
        "uri": "https://security-tracker.debian.org/tracker/CVE-2026-0001",
        "attributes": [{"key": "package_name", "value": "openssl"}],
    }
    code, output, _ = run(
        tmp_path,
        "check-image-scan",
        ["wxhub-dev", DIGEST],
        scan({severity: 1, "LOW": 2}, [finding, {"name": "CVE-low", "severity": "LOW"}]),
    )
    assert code == 1
    assert f"{severity} CVE-2026-0001 openssl" in output
    assert "CVE-low" not in output


def test_a_scan_that_did_not_complete_fails_the_deploy(tmp_path: Path) -> None:
    scenario = scan({})
    scenario["ecr wait"] = {"error": "Waiter ImageScanComplete failed: scan status FAILED"}
    code, output, calls = run(tmp_path, "check-image-scan", ["wxhub-dev", DIGEST], scenario)
    assert code != 0
    assert "FAILED" in output
    assert operations(calls) == ["ecr wait"]


# -- promote-image ------------------------------------------------------------------------


def in_prod(*digests: str | None) -> dict[str, Any]:
    """What describe-images of wxhub-prod:<sha> answers, one call after another."""
    answers: list[dict[str, Any]] = [
        {"error": "ImageNotFoundException"}
        if digest is None
        else {"json": {"imageDetails": [{"imageDigest": digest}]}}
        for digest in digests
    ]
    return {"ecr describe-images": {"sequence": answers}}


def test_the_image_is_copied_by_digest_and_checked_in_the_target(tmp_path: Path) -> None:
    code, output, calls = run(
        tmp_path, "promote-image", [DEV, DIGEST, PROD, SHA], in_prod(None, DIGEST)
    )
    assert code == 0, output
    (copy,) = [c for c in calls if c["operation"].startswith("docker")]
    assert copy["args"] == [
        "buildx",
        "imagetools",
        "create",
        "--tag",
        f"{PROD}:{SHA}",
        f"{DEV}@{DIGEST}",
    ]
    checks = [c for c in calls if c["operation"] == "ecr describe-images"]
    assert len(checks) == 2
    assert "wxhub-prod" in checks[-1]["args"]
    assert output.strip().splitlines()[-1] == DIGEST


def test_a_copy_with_another_digest_fails_the_deploy(tmp_path: Path) -> None:
    code, output, _ = run(
        tmp_path, "promote-image", [DEV, DIGEST, PROD, SHA], in_prod(None, OTHER_DIGEST)
    )
    assert code == 1
    assert f"is {OTHER_DIGEST}, not {DIGEST}" in output


def test_a_rerun_finds_the_copy_and_copies_nothing(tmp_path: Path) -> None:
    code, output, calls = run(tmp_path, "promote-image", [DEV, DIGEST, PROD, SHA], in_prod(DIGEST))
    assert code == 0, output
    assert not [c for c in calls if c["operation"].startswith("docker")]


def test_a_tag_instead_of_a_digest_is_refused(tmp_path: Path) -> None:
    code, output, calls = run(tmp_path, "promote-image", [DEV, SHA, PROD, SHA], in_prod(DIGEST))
    assert code == 2
    assert "not a sha256 digest" in output
    assert calls == []


# -- cdk-main-stack -----------------------------------------------------------------------


def cdk_args(calls: list[dict[str, Any]]) -> list[str]:
    (cdk,) = [c for c in calls if c["operation"].startswith("cdk")]
    args: list[str] = cdk["args"]
    return args


def test_deploy_passes_the_digest_certificate_and_the_optional_settings_that_are_set(
    tmp_path: Path,
) -> None:
    code, output, calls = run(
        tmp_path,
        "cdk-main-stack",
        ["deploy"],
        {},
        DEPLOY_ENV="prod",
        IMAGE_DIGEST=DIGEST,
        CERTIFICATE_ARN=CERTIFICATE,
        ALARM_EMAIL="ops@example.com",
        DOMAIN_NAME="api.example.com",
        JOB_SHARDS="16",
        JOB_SCHEDULE="cron(0 2 * * ? *)",
    )
    assert code == 0, output
    assert cdk_args(calls) == [
        "deploy",
        "Wxhub-prod",
        "-c",
        "env=prod",
        "-c",
        f"imageTag={DIGEST}",
        "-c",
        f"certificateArn={CERTIFICATE}",
        "-c",
        "alarmEmail=ops@example.com",
        "-c",
        "domainName=api.example.com",
        "-c",
        "jobShards=16",
        "-c",
        "schedule=cron(0 2 * * ? *)",
        "--require-approval",
        "never",
    ]


def test_diff_leaves_out_optional_settings_that_are_empty(tmp_path: Path) -> None:
    code, output, calls = run(
        tmp_path,
        "cdk-main-stack",
        ["diff"],
        {},
        DEPLOY_ENV="prod",
        IMAGE_DIGEST=DIGEST,
        CERTIFICATE_ARN=CERTIFICATE,
        JOB_SHARDS="",
    )
    assert code == 0, output
    assert cdk_args(calls) == [
        "diff",
        "Wxhub-prod",
        "-c",
        "env=prod",
        "-c",
        f"imageTag={DIGEST}",
        "-c",
        f"certificateArn={CERTIFICATE}",
        "--no-color",
    ]


def test_a_deploy_by_tag_instead_of_digest_is_refused(tmp_path: Path) -> None:
    code, output, calls = run(
        tmp_path,
        "cdk-main-stack",
        ["deploy"],
        {},
        DEPLOY_ENV="dev",
        IMAGE_DIGEST=SHA,
        CERTIFICATE_ARN=CERTIFICATE,
    )
    assert code == 2
    assert "not a sha256 digest" in output
    assert calls == []
