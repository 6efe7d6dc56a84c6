"""The deploy's migration step (.github/scripts/run-migrations) against a fake ``aws`` CLI.

The fake answers from a scenario (the stack's outputs, the task definition, the state
machine's executions, the container's exit code) and records every call, so the tests check
what the script asks AWS to do: one new task definition revision with the new image, then one
``{"migrateOnly": true}`` execution of the job's state machine (after any run in progress),
or, for a stack from before the state machine, one FARGATE task with the command
``wxhub migrate`` in the job's network; a failure on a failed migration, and nothing at all on
the first deploy.
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

SCRIPT = REPO_ROOT / ".github" / "scripts" / "run-migrations"
STACK = "Wxhub-dev"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-dev:0123abc"
OLD_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-dev:old"
TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-job:7"
NEW_REVISION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-job:8"
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/wxhub-dev/abc"
STATE_MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:wxhub-dev-job"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:wxhub-dev-job:deploy-1"

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the script needs jq")

# The fake CLI: finds the answer for "<service> <operation>" in the scenario, records the call.
# An answer {"sequence": [a, b, ...]} gives a to the first call, b to the second, and the last
# to every call after.
FAKE_AWS = """\
import json, os, sys
scenario = json.load(open(os.environ["FAKE_AWS_SCENARIO"]))
args = sys.argv[1:]
call = {"operation": " ".join(args[:2]), "args": args}
for i, arg in enumerate(args):
    if arg == "--cli-input-json":
        call["input"] = json.load(open(args[i + 1].removeprefix("file://")))
with open(os.environ["FAKE_AWS_CALLS"]) as calls:
    earlier = sum(json.loads(line)["operation"] == call["operation"] for line in calls)
with open(os.environ["FAKE_AWS_CALLS"], "a") as calls:
    calls.write(json.dumps(call) + "\\n")
answer = scenario.get(call["operation"], {})
if "sequence" in answer:
    answer = answer["sequence"][min(earlier, len(answer["sequence"]) - 1)]
if "error" in answer:
    sys.stderr.write(answer["error"] + "\\n")
    sys.exit(254)
print(json.dumps(answer.get("json", {})))
"""


def _outputs(**overrides: str) -> list[dict[str, str]]:
    outputs = {
        "ClusterName": "wxhub-dev",
        "JobTaskDefinitionArn": TASK_DEFINITION,
        "JobContainerName": "job",
        "JobSecurityGroupId": "sg-0job",
        "PrivateSubnetIds": "subnet-a,subnet-b",
        "ApiServiceName": "wxhub-dev-api",
        **overrides,
    }
    return [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items() if v]


def _scenario(exit_code: int | None = 0, **outputs: str) -> dict[str, Any]:
    container = {"name": "job", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {
        "cloudformation describe-stacks": {"json": {"Stacks": [{"Outputs": _outputs(**outputs)}]}},
        "ecs describe-task-definition": {
            "json": {
                "taskDefinition": {
                    "taskDefinitionArn": TASK_DEFINITION,
                    "family": "wxhub-dev-job",
                    "revision": 7,
                    "status": "ACTIVE",
                    "compatibilities": ["EC2", "FARGATE"],
                    "requiresAttributes": [{"name": "ecs.capability.secrets.asm.environment"}],
                    "registeredAt": "2026-11-01T00:00:00Z",
                    "registeredBy": "arn:aws:sts::123456789012:assumed-role/cfn",
                    "networkMode": "awsvpc",
                    "cpu": "512",
                    "memory": "1024",
                    "containerDefinitions": [
                        {"name": "job", "image": OLD_IMAGE, "command": ["python", "-m", "x"]},
                        {"name": "sidecar", "image": "public.ecr.aws/sidecar:1"},
                    ],
                },
                "tags": [{"key": "project", "value": "wxhub"}],
            }
        },
        "ecs register-task-definition": {
            "json": {"taskDefinition": {"taskDefinitionArn": NEW_REVISION}}
        },
        "ecs run-task": {"json": {"tasks": [{"taskArn": TASK}], "failures": []}},
        "ecs wait": {"json": {}},
        "ecs describe-tasks": {
            "json": {
                "tasks": [
                    {"stoppedReason": "Essential container exited", "containers": [container]}
                ]
            }
        },
        "ecs deregister-task-definition": {"json": {}},
    }


def _machine_scenario(*statuses: str, running: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """A stack with the state machine; ``running`` RUNNING executions at each look, then the
    deploy's execution ``statuses`` at each poll."""
    scenario = _scenario(JobStateMachineArn=STATE_MACHINE)
    scenario["stepfunctions list-executions"] = {
        "sequence": [
            {"json": {"executions": [{"executionArn": f"x{i}"} for i in range(n)]}} for n in running
        ]
    }
    scenario["stepfunctions start-execution"] = {"json": {"executionArn": EXECUTION}}
    scenario["stepfunctions describe-execution"] = {
        "sequence": [{"json": {"status": status}} for status in statuses or ("SUCCEEDED",)]
    }
    scenario["stepfunctions stop-execution"] = {"json": {}}
    return scenario


def _run(
    tmp_path: Path, scenario: dict[str, Any], **env: str
) -> tuple[int, str, list[dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "aws"
    fake.write_text(f"#!{sys.executable}\n{FAKE_AWS}")
    fake.chmod(0o755)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    calls_file = tmp_path / "calls.jsonl"
    calls_file.touch()
    (tmp_path / "github_output").touch()
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AWS_SCENARIO": str(tmp_path / "scenario.json"),
        "FAKE_AWS_CALLS": str(calls_file),
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "RUN_MIGRATIONS_POLL_SECONDS": "0",
        **env,
    }
    result = subprocess.run(
        [str(SCRIPT), STACK, IMAGE],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
    return result.returncode, result.stdout + result.stderr, calls


def _call(calls: list[dict[str, Any]], operation: str) -> dict[str, Any]:
    (found,) = [c for c in calls if c["operation"] == operation]
    return found


def _option(call: dict[str, Any], name: str) -> str:
    args: list[str] = call["args"]
    return args[args.index(name) + 1]


def _operations(calls: list[dict[str, Any]]) -> list[str]:
    return [c["operation"] for c in calls]


# -- a stack with the job's state machine -------------------------------------------------


def test_the_migration_is_an_execution_of_the_state_machine_that_only_migrates(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario("RUNNING", "SUCCEEDED"))
    assert code == 0, output

    registered = _call(calls, "ecs register-task-definition")["input"]
    assert {c["name"]: c["image"] for c in registered["containerDefinitions"]}["job"] == IMAGE
    started = _call(calls, "stepfunctions start-execution")
    assert _option(started, "--state-machine-arn") == STATE_MACHINE
    assert json.loads(_option(started, "--input")) == {"migrateOnly": True}
    assert _option(started, "--name").startswith("deploy-")
    # Registered first: the execution's migrate step runs the family's latest revision.
    operations = _operations(calls)
    assert operations.index("ecs register-task-definition") < operations.index(
        "stepfunctions start-execution"
    )
    assert operations.count("stepfunctions describe-execution") == 2
    assert "ecs run-task" not in operations


def test_the_new_revision_is_kept_for_the_runs_until_the_stack_replaces_it(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario())
    assert code == 0, output
    assert "ecs deregister-task-definition" not in _operations(calls)
    assert (tmp_path / "github_output").read_text() == f"revision={NEW_REVISION}\n"


def test_a_run_in_progress_is_waited_for_before_the_new_image_is_registered(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario(running=(1, 1, 0)))
    assert code == 0, output
    operations = _operations(calls)
    assert operations.count("stepfunctions list-executions") == 3
    assert operations.index("ecs register-task-definition") > max(
        i for i, op in enumerate(operations) if op == "stepfunctions list-executions"
    )
    listing = next(c for c in calls if c["operation"] == "stepfunctions list-executions")
    assert _option(listing, "--state-machine-arn") == STATE_MACHINE
    assert _option(listing, "--status-filter") == "RUNNING"
    assert "in progress; waiting" in output


def test_a_run_that_outlasts_the_wait_fails_the_deploy_and_changes_nothing(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(
        tmp_path, _machine_scenario(running=(1,)), RUN_MIGRATIONS_WAIT_MINUTES="0"
    )
    assert code == 1
    assert "still going after 0 min" in output
    assert "ecs register-task-definition" not in _operations(calls)
    assert "stepfunctions start-execution" not in _operations(calls)


def test_a_migration_still_queued_at_the_deadline_is_stopped_and_its_revision_dropped(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(
        tmp_path, _machine_scenario("RUNNING"), RUN_MIGRATIONS_WAIT_MINUTES="0"
    )
    assert code == 1
    assert "stopped it" in output
    assert _option(_call(calls, "stepfunctions stop-execution"), "--execution-arn") == EXECUTION
    deregistered = _call(calls, "ecs deregister-task-definition")
    assert _option(deregistered, "--task-definition") == NEW_REVISION


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_migration_that_does_not_succeed_fails_the_deploy_and_drops_its_revision(
    tmp_path: Path, status: str
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario(status))
    assert code == 1
    assert f"ended {status}" in output
    assert _call(calls, "ecs deregister-task-definition")
    assert (tmp_path / "github_output").read_text() == ""


# -- a stack from before the state machine: a one-off task ---------------------------------


def test_migrations_run_as_one_fargate_task_of_a_new_revision_with_the_new_image(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _scenario())
    assert code == 0, output

    registered = _call(calls, "ecs register-task-definition")["input"]
    images = {c["name"]: c["image"] for c in registered["containerDefinitions"]}
    assert images == {"job": IMAGE, "sidecar": "public.ecr.aws/sidecar:1"}
    for read_only in (
        "taskDefinitionArn",
        "revision",
        "status",
        "compatibilities",
        "requiresAttributes",
        "registeredAt",
        "registeredBy",
    ):
        assert read_only not in registered, "register-task-definition rejects it"
    assert registered["family"] == "wxhub-dev-job"
    assert registered["tags"] == [{"key": "project", "value": "wxhub"}]

    run = _call(calls, "ecs run-task")
    assert _option(run, "--cluster") == "wxhub-dev"
    assert _option(run, "--launch-type") == "FARGATE"
    assert _option(run, "--task-definition") == NEW_REVISION
    assert json.loads(_option(run, "--overrides")) == {
        "containerOverrides": [{"name": "job", "command": ["wxhub", "migrate"]}]
    }
    assert json.loads(_option(run, "--network-configuration")) == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"],
            "securityGroups": ["sg-0job"],
            "assignPublicIp": "DISABLED",
        }
    }
    wait = _call(calls, "ecs wait")
    assert wait["args"][2] == "tasks-stopped"
    assert _option(wait, "--tasks") == TASK


def test_the_revision_used_for_the_migrations_is_deregistered_afterwards(tmp_path: Path) -> None:
    code, output, calls = _run(tmp_path, _scenario())
    assert code == 0, output
    deregistered = _call(calls, "ecs deregister-task-definition")
    assert _option(deregistered, "--task-definition") == NEW_REVISION
    assert calls[-1]["operation"] == "ecs deregister-task-definition"


@pytest.mark.parametrize("exit_code", [1, 2, None])
def test_a_migration_that_does_not_exit_0_fails_the_deploy(
    tmp_path: Path, exit_code: int | None
) -> None:
    code, output, calls = _run(tmp_path, _scenario(exit_code=exit_code))
    assert code == 1
    assert f"exited with {exit_code if exit_code is not None else 'none'}" in output
    assert "Essential container exited" in output
    assert _call(calls, "ecs deregister-task-definition")


def test_the_first_deploy_skips_the_migrations_because_the_stack_does_not_exist(
    tmp_path: Path,
) -> None:
    scenario = _scenario()
    scenario["cloudformation describe-stacks"] = {
        "error": f"An error occurred (ValidationError): Stack with id {STACK} does not exist"
    }
    code, output, calls = _run(tmp_path, scenario)
    assert code == 0, output
    assert "first deploy" in output
    assert [c["operation"] for c in calls] == ["cloudformation describe-stacks"]
    # The workflow starts the first run once the stack is up.
    assert (tmp_path / "github_output").read_text() == "first_deploy=true\n"


def test_a_stack_without_the_job_outputs_skips_the_migrations(tmp_path: Path) -> None:
    code, output, calls = _run(tmp_path, _scenario(JobTaskDefinitionArn=""))
    assert code == 0, output
    assert "no JobTaskDefinitionArn" in output
    assert [c["operation"] for c in calls] == ["cloudformation describe-stacks"]


def test_any_other_describe_stacks_error_fails_the_deploy(tmp_path: Path) -> None:
    scenario = _scenario()
    scenario["cloudformation describe-stacks"] = {
        "error": "An error occurred (AccessDenied): not authorized to perform DescribeStacks"
    }
    code, output, _ = _run(tmp_path, scenario)
    assert code == 1
    assert "AccessDenied" in output


def test_a_task_that_does_not_start_fails_the_deploy_with_the_reason(tmp_path: Path) -> None:
    scenario = _scenario()
    scenario["ecs run-task"] = {
        "json": {"tasks": [], "failures": [{"reason": "RESOURCE:ENI", "arn": "x"}]}
    }
    code, output, calls = _run(tmp_path, scenario)
    assert code == 1
    assert "RESOURCE:ENI" in output
    assert not [c for c in calls if c["operation"] == "ecs wait"]
    assert _call(calls, "ecs deregister-task-definition")


def test_a_missing_container_name_in_the_task_definition_fails_before_registering(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _scenario(JobContainerName="not-there"))
    assert code == 1
    assert "no container named not-there" in output
    assert not [c for c in calls if c["operation"] == "ecs register-task-definition"]
