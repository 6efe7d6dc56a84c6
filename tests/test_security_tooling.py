"""The scanners of `make security` (.ci/security) bite, and their exceptions stay explained.

Each scanner runs from the project's .venv on a file planted in a temporary folder, the way
.ci/security runs it: a check that could never fail would be worse than none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FINDINGS = ROOT / ".ci" / "security_findings.py"

# AWS's documented example key id, assembled here so that this file holds no key to find.
PLANTED_AWS_KEY_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"


def run(*args: str | Path, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_detect_secrets_finds_a_planted_aws_key(tmp_path: Path) -> None:
    planted = tmp_path / "settings.py"
    planted.write_text(f'AWS_ACCESS_KEY_ID = "{PLANTED_AWS_KEY_ID}"\n')

    result = run(BIN / "detect-secrets", "scan", planted.name, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["results"][planted.name]
    assert "AWS Access Key" in {finding["type"] for finding in findings}


def test_a_new_secret_fails_the_baseline_check_and_names_file_and_line(tmp_path: Path) -> None:
    """The same steps as .ci/security: scan into a copy of the baseline, then check it."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "fixture.py").write_text('PASSWORD = "fixture-only"\n')
    subprocess.run(["git", "-C", str(tmp_path), "add", "fixture.py"], check=True)
    baseline = tmp_path / "scanned.baseline"
    baseline.write_text(run(BIN / "detect-secrets", "scan", cwd=tmp_path).stdout)
    audited = json.loads(baseline.read_text())
    for finding in audited["results"]["fixture.py"]:
        finding["is_secret"] = False
    baseline.write_text(json.dumps(audited))
    reasons = tmp_path / "reasons"
    short_hash = audited["results"]["fixture.py"][0]["hashed_secret"][:12]
    reasons.write_text(f"fixture.py  {short_hash}  a test fixture\n")
    assert run(sys.executable, FINDINGS, "secrets", baseline, reasons).returncode == 0

    (tmp_path / "deploy.py").write_text(f'KEY_ID = "{PLANTED_AWS_KEY_ID}"\n')
    subprocess.run(["git", "-C", str(tmp_path), "add", "deploy.py"], check=True)
    scan = run(BIN / "detect-secrets", "scan", "--baseline", baseline, cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    result = run(sys.executable, FINDINGS, "secrets", baseline, reasons)

    assert result.returncode == 1
    assert "deploy.py:1: AWS Access Key: a new possible secret" in result.stderr
    assert "fixture.py" not in result.stderr


def test_bandit_flags_a_planted_shell_true_subprocess_call(tmp_path: Path) -> None:
    planted = tmp_path / "job.py"
    planted.write_text(
        "import subprocess\n\n\ndef purge(name: str) -> None:\n"
        "    subprocess.call(f'rm -rf /data/{name}', shell=True)\n"
    )

    result = run(BIN / "bandit", "-c", ROOT / "pyproject.toml", "-f", "json", "-q", planted)

    assert result.returncode == 1
    issues = json.loads(result.stdout)["results"]
    assert ("B602", "HIGH") in {(i["test_id"], i["issue_severity"]) for i in issues}


def test_pip_audit_fails_loudly_when_pypi_cannot_be_reached(tmp_path: Path) -> None:
    """A proxy nobody listens on stands in for a network without PyPI: no silent pass."""
    result = run(
        ROOT / ".ci" / "security",
        "deps",
        HTTPS_PROXY="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        PIP_CACHE_DIR=str(tmp_path),  # no answer cached from an earlier run
        PIP_RETRIES="0",
    )

    assert result.returncode == 1
    assert "FAILED: deps" in result.stderr


def test_a_pip_audit_exception_past_its_review_date_fails(tmp_path: Path) -> None:
    ignores = tmp_path / "ignores"
    ignores.write_text(
        "# comment\nGHSA-aaaa-bbbb-cccc  2999-01-01  not reachable from wxhub\n"
        "PYSEC-2020-1  2020-01-01  reviewed long ago\n"
    )

    result = run(sys.executable, FINDINGS, "audit-ignores", ignores)

    assert result.returncode == 1
    assert result.stdout.split() == ["--ignore-vuln", "GHSA-aaaa-bbbb-cccc"]
    assert "PYSEC-2020-1 was to be reviewed by 2020-01-01" in result.stderr


NOQA = re.compile(r"#\s*noqa:([^#]*)")
NOSEC = re.compile(r"#\s*nosec\b([^#]*)")


def _codes(pattern: re.Pattern[str], line: str, prefix: str) -> set[str]:
    match = pattern.search(line)
    if match is None:
        return set()
    return {code[1:] for code in re.findall(rf"\b{prefix}\d{{3}}\b", match.group(1))}


def _has_reason(line: str, line_above: str) -> bool:
    """Words in the noqa part beyond its codes, e.g. `(see the docstring)`, or a comment above."""
    match = NOQA.search(line)
    words = re.sub(r"\b[A-Z]+\d+\b|,", "", match.group(1)) if match else ""
    return bool(words.strip()) or line_above.lstrip().startswith("#")


def test_ruff_and_bandit_exceptions_in_src_agree_and_give_their_reason() -> None:
    """`# noqa: Sxxx` needs `# nosec Bxxx` (same number) and the reverse, with a reason."""
    problems = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            where = f"{path.relative_to(ROOT)}:{number}"
            ruff, bandit = _codes(NOQA, line, "S"), _codes(NOSEC, line, "B")
            if NOSEC.search(line) and not bandit:
                problems.append(f"{where}: a bare `# nosec` silences every test")
            if ruff != bandit:
                problems.append(f"{where}: noqa names S{sorted(ruff)}, nosec B{sorted(bandit)}")
            elif bandit and not _has_reason(line, lines[number - 2] if number > 1 else ""):
                problems.append(f"{where}: say why, in the noqa part or a comment above")

    assert not problems, "\n".join(problems)
