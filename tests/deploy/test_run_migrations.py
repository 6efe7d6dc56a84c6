"""The deploy's migration step (.github/scripts/run-migrations) against a fake ``aws`` CLI.

The fake answers from a scenario (the stack's outputs, the task definitions, the state
machine's executions, the container's exit code) and records every call, so the tests check
what the script asks AWS to do: a new revision of the migration task definition (the only one
with the master user's secret) and of the job's, each with the new image, then one
``{"migrateOnly": true}`` execution of the job's state machine (after any run in progress),
whose Migrate step runs the migration task; or, for a stack from before the state machine, one
FARGATE task of the migration task with the command ``wxhub migrate`` in the migration task's
network; a failure on a failed migration, and nothing at all before the first deploy.
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
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-dev@sha256:" + "0123abcd" * 8
OLD_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wxhub-dev@sha256:" + "4567cdef" * 8
TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-migrate:7"
NEW_REVISION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-migrate:8"
# The job's own task definition: the job's user only, never used for migrations; the state
# machine's shards and aggregate run it.
JOB_TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-job:3"
NEW_JOB_REVISION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/wxhub-dev-job:4"
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/wxhub-dev/abc"
STATE_MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:wxhub-dev-job"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:wxhub-dev-job:deploy-1"

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the script needs jq")

# The fake CLI: finds the answer for "<service> <operation>" in the scenario, records the call.
# An answer {"sequence": [a, b, ...]} gives a to the first call, b to the second, and the last
# to every call after. An answer {"by": OPTION, "answers": {value: answer}} picks the answer by
# the value of a command-line option, or by the family of a --cli-input-json (OPTION "family").
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
if "by" in answer:
    by = answer["by"]
    key = call["input"]["family"] if by == "family" else args[args.index(by) + 1]
    answer = answer["answers"][key]
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
        "JobTaskDefinitionArn": JOB_TASK_DEFINITION,
        "JobContainerName": "job",
        "JobSecurityGroupId": "sg-0job",
        "MigrationTaskDefinitionArn": TASK_DEFINITION,
        "MigrationContainerName": "migrate",
        "MigrationSecurityGroupId": "sg-0migrate",
        "PrivateSubnetIds": "subnet-a,subnet-b",
        "ApiServiceName": "wxhub-dev-api",
        **overrides,
    }
    return [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items() if v]


def _task_definition(  # noqa: PLR0917  (one scenario's fields, named at each call)
    arn: str, family: str, revision: int, container: str, command: list[str], image: str
) -> dict[str, Any]:
    return {
        "json": {
            "taskDefinition": {
                "taskDefinitionArn": arn,
                "family": family,
                "revision": revision,
                "status": "ACTIVE",
                "compatibilities": ["EC2", "FARGATE"],
                "requiresAttributes": [{"name": "ecs.capability.secrets.asm.environment"}],
                "registeredAt": "2026-11-01T00:00:00Z",
                "registeredBy": "arn:aws:sts::123456789012:assumed-role/cfn",
                "networkMode": "awsvpc",
                "cpu": "512",
                "memory": "1024",
                "containerDefinitions": [
                    {"name": container, "image": image, "command": command},
                    {"name": "sidecar", "image": "public.ecr.aws/sidecar:1"},
                ],
            },
            "tags": [{"key": "project", "value": "wxhub"}],
        }
    }


def _scenario(
    exit_code: int | None = 0,
    *,
    migration_image: str = OLD_IMAGE,
    job_image: str = OLD_IMAGE,
    **outputs: str,
) -> dict[str, Any]:
    container = {"name": "migrate", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {
        "cloudformation describe-stacks": {"json": {"Stacks": [{"Outputs": _outputs(**outputs)}]}},
        "ecs describe-task-definition": {
            "by": "--task-definition",
            "answers": {
                TASK_DEFINITION: _task_definition(
                    TASK_DEFINITION,
                    "wxhub-dev-migrate",
                    7,
                    "migrate",
                    ["wxhub", "migrate"],
                    migration_image,
                ),
                JOB_TASK_DEFINITION: _task_definition(
                    JOB_TASK_DEFINITION,
                    "wxhub-dev-job",
                    3,
                    "job",
                    ["python", "-m", "wxhub.ingestion"],
                    job_image,
                ),
            },
        },
        "ecs register-task-definition": {
            "by": "family",
            "answers": {
                "wxhub-dev-migrate": {
                    "json": {"taskDefinition": {"taskDefinitionArn": NEW_REVISION}}
                },
                "wxhub-dev-job": {
                    "json": {"taskDefinition": {"taskDefinitionArn": NEW_JOB_REVISION}}
                },
            },
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


def _machine_scenario(
    *statuses: str, running: tuple[int, ...] = (0,), image: str = OLD_IMAGE
) -> dict[str, Any]:
    """A stack with the state machine; ``running`` RUNNING executions at each look, then the
    deploy's execution ``statuses`` at each poll; both task definitions run ``image``."""
    scenario = _scenario(migration_image=image, job_image=image, JobStateMachineArn=STATE_MACHINE)
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


def _calls(calls: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["operation"] == operation]


def _option(call: dict[str, Any], name: str) -> str:
    args: list[str] = call["args"]
    return args[args.index(name) + 1]


def _operations(calls: list[dict[str, Any]]) -> list[str]:
    return [c["operation"] for c in calls]


def _registered_images(calls: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """family -> container -> image, of every revision registered."""
    return {
        c["input"]["family"]: {d["name"]: d["image"] for d in c["input"]["containerDefinitions"]}
        for c in _calls(calls, "ecs register-task-definition")
    }


def _deregistered(calls: list[dict[str, Any]]) -> list[str]:
    return [
        _option(c, "--task-definition") for c in _calls(calls, "ecs deregister-task-definition")
    ]


# -- a stack with the job's state machine -------------------------------------------------


def test_the_migration_is_an_execution_of_the_state_machine_that_only_migrates(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario("RUNNING", "SUCCEEDED"))
    assert code == 0, output

    started = _call(calls, "stepfunctions start-execution")
    assert _option(started, "--state-machine-arn") == STATE_MACHINE
    assert json.loads(_option(started, "--input")) == {"migrateOnly": True}
    assert _option(started, "--name").startswith("deploy-")
    operations = _operations(calls)
    assert operations.count("stepfunctions describe-execution") == 2
    # No task of its own: the state machine's Migrate step runs the migration task.
    assert "ecs run-task" not in operations


def test_the_new_image_is_registered_in_the_migration_and_the_job_families_first(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario())
    assert code == 0, output
    # The migration family (master secret) for the Migrate step, the job's for the runs after.
    assert _registered_images(calls) == {
        "wxhub-dev-migrate": {"migrate": IMAGE, "sidecar": "public.ecr.aws/sidecar:1"},
        "wxhub-dev-job": {"job": IMAGE, "sidecar": "public.ecr.aws/sidecar:1"},
    }
    # Registered first: the execution's steps run their families' latest revisions.
    operations = _operations(calls)
    last_registration = max(
        i for i, op in enumerate(operations) if op == "ecs register-task-definition"
    )
    assert last_registration < operations.index("stepfunctions start-execution")


def test_the_new_revisions_are_kept_for_the_runs_until_the_stack_replaces_them(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario())
    assert code == 0, output
    assert "ecs deregister-task-definition" not in _operations(calls)
    assert (tmp_path / "github_output").read_text() == (
        f"revisions={NEW_REVISION} {NEW_JOB_REVISION}\n"
    )


def test_families_that_already_run_the_image_get_no_new_revision(tmp_path: Path) -> None:
    # The run after `cdk deploy`: the stack's own revisions run the image.
    code, output, calls = _run(tmp_path, _machine_scenario(image=IMAGE))
    assert code == 0, output
    assert "ecs register-task-definition" not in _operations(calls)
    assert json.loads(_option(_call(calls, "stepfunctions start-execution"), "--input")) == {
        "migrateOnly": True
    }
    assert "ecs deregister-task-definition" not in _operations(calls)
    assert (tmp_path / "github_output").read_text() == ""


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


def test_a_migration_still_queued_at_the_deadline_is_stopped_and_its_revisions_dropped(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(
        tmp_path, _machine_scenario("RUNNING"), RUN_MIGRATIONS_WAIT_MINUTES="0"
    )
    assert code == 1
    assert "stopped it" in output
    assert _option(_call(calls, "stepfunctions stop-execution"), "--execution-arn") == EXECUTION
    assert sorted(_deregistered(calls)) == sorted([NEW_REVISION, NEW_JOB_REVISION])


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_migration_that_does_not_succeed_fails_the_deploy_and_drops_its_revisions(
    tmp_path: Path, status: str
) -> None:
    code, output, calls = _run(tmp_path, _machine_scenario(status))
    assert code == 1
    assert f"ended {status}" in output
    assert sorted(_deregistered(calls)) == sorted([NEW_REVISION, NEW_JOB_REVISION])
    assert (tmp_path / "github_output").read_text() == ""


def test_a_stack_with_the_state_machine_but_without_the_job_outputs_fails(
    tmp_path: Path,
) -> None:
    scenario = _machine_scenario()
    scenario["cloudformation describe-stacks"] = {
        "json": {
            "Stacks": [
                {"Outputs": _outputs(JobStateMachineArn=STATE_MACHINE, JobTaskDefinitionArn="")}
            ]
        }
    }
    code, output, calls = _run(tmp_path, scenario)
    assert code == 1
    assert "lacks the output for job_definition" in output
    assert _operations(calls) == ["cloudformation describe-stacks"]


# -- a stack from before the state machine: a one-off migration task ----------------------


def test_migrations_run_as_one_fargate_task_of_a_new_revision_with_the_new_image(
    tmp_path: Path,
) -> None:
    code, output, calls = _run(tmp_path, _scenario())
    assert code == 0, output

    registered = _call(calls, "ecs register-task-definition")["input"]
    images = {c["name"]: c["image"] for c in registered["containerDefinitions"]}
    assert images == {"migrate": IMAGE, "sidecar": "public.ecr.aws/sidecar:1"}
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
    assert registered["family"] == "wxhub-dev-migrate"  # the task with the master secret
    assert registered["tags"] == [{"key": "project", "value": "wxhub"}]

    run = _call(calls, "ecs run-task")
    assert _option(run, "--cluster") == "wxhub-dev"
    assert _option(run, "--launch-type") == "FARGATE"
    assert _option(run, "--task-definition") == NEW_REVISION
    assert json.loads(_option(run, "--overrides")) == {
        "containerOverrides": [{"name": "migrate", "command": ["wxhub", "migrate"]}]
    }
    assert json.loads(_option(run, "--network-configuration")) == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"],
            "securityGroups": ["sg-0migrate"],
            "assignPublicIp": "DISABLED",
        }
    }
    wait = _call(calls, "ecs wait")
    assert wait["args"][2] == "tasks-stopped"
    assert _option(wait, "--tasks") == TASK
    # No state machine to serialise with, and the job's task definition is left alone.
    assert not [op for op in _operations(calls) if op.startswith("stepfunctions")]


def test_the_revision_used_for_the_migrations_is_deregistered_afterwards(tmp_path: Path) -> None:
    code, output, calls = _run(tmp_path, _scenario())
    assert code == 0, output
    assert _deregistered(calls) == [NEW_REVISION]
    assert calls[-1]["operation"] == "ecs deregister-task-definition"


def test_a_migration_task_that_already_runs_the_image_is_run_as_it_is(tmp_path: Path) -> None:
    code, output, calls = _run(tmp_path, _scenario(migration_image=IMAGE))
    assert code == 0, output
    assert "ecs register-task-definition" not in _operations(calls)
    assert _option(_call(calls, "ecs run-task"), "--task-definition") == TASK_DEFINITION
    # CloudFormation's own revision: never deregistered.
    assert _deregistered(calls) == []


@pytest.mark.parametrize("exit_code", [1, 2, None])
def test_a_migration_that_does_not_exit_0_fails_the_deploy(
    tmp_path: Path, exit_code: int | None
) -> None:
    code, output, calls = _run(tmp_path, _scenario(exit_code=exit_code))
    assert code == 1
    assert f"exited with {exit_code if exit_code is not None else 'none'}" in output
    assert "Essential container exited" in output
    assert _call(calls, "ecs deregister-task-definition")


# -- before there is anything to migrate, and errors --------------------------------------


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


def test_a_stack_without_the_migration_task_skips_the_migrations(tmp_path: Path) -> None:
    # A stack deployed before the migration task existed: the run after the deploy migrates.
    code, output, calls = _run(
        tmp_path,
        _scenario(
            MigrationTaskDefinitionArn="", MigrationContainerName="", MigrationSecurityGroupId=""
        ),
    )
    assert code == 0, output
    assert "no MigrationTaskDefinitionArn" in output
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
    code, output, calls = _run(tmp_path, _scenario(MigrationContainerName="not-there"))
    assert code == 1
    assert "no container named not-there" in output
    assert not [c for c in calls if c["operation"] == "ecs register-task-definition"]
