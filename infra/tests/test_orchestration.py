"""The nightly run's state machine: queue, migrate once, N shards, aggregate, alarm on failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from tests.conftest import bare_stack, dev, only_logical_id, resources
from wxhub_infra.orchestration import Orchestration, ingest_command
from wxhub_infra.settings import EnvironmentSettings

SOURCES = ["s3://raw/", "s3://noaa-ghcn-pds/csv.gz/by_station/"]


def build(settings: EnvironmentSettings, *, separate_migration: bool = False) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    job = ecs.FargateTaskDefinition(stack, "JobTask", family=settings.job_family)
    # Logs to CloudWatch, so each task definition has an execution role besides its task role.
    logging = ecs.LogDrivers.aws_logs(stream_prefix="test")
    job.add_container("job", image=ecs.ContainerImage.from_registry("wxhub:test"), logging=logging)
    migration = None
    migration_group = None
    if separate_migration:
        migration = ecs.FargateTaskDefinition(stack, "MigrationTask", family="wxhub-dev-migrate")
        migration.add_container(
            "migrate", image=ecs.ContainerImage.from_registry("wxhub:test"), logging=logging
        )
        migration_group = ec2.SecurityGroup(stack, "MigrationSecurityGroup", vpc=vpc)
    Orchestration(
        stack,
        "Orchestration",
        settings=settings,
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
        security_group=ec2.SecurityGroup(stack, "JobSecurityGroup", vpc=vpc),
        task_definition=job,
        container_name="job",
        sources=SOURCES,
        alarm_topic=sns.Topic(stack, "Topic"),
        migration_task_definition=migration,
        migration_container_name="migrate" if separate_migration else None,
        migration_security_group=migration_group,
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def machine() -> Template:
    return build(dev(job_shards=3, job_max_concurrent_shards=2))


def definition(template: Template) -> dict[str, Any]:
    """The state machine's Amazon States Language, with each CloudFormation reference written
    as ``<LogicalId>`` or ``<LogicalId.Attribute>``."""
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else _reference(part) for part in parts)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _reference(part: dict[str, Any]) -> str:
    if "Ref" in part:
        return f"<{part['Ref']}>"
    return "<{}.{}>".format(*part["Fn::GetAtt"])


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those inside Map states included."""
    for name, state in states.items():
        yield name, state
        if "ItemProcessor" in state:
            yield from all_states(state["ItemProcessor"]["States"])


def ecs_tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for name, state in all_states(asl["States"])
        if state["Type"] == "Task" and "ecs:runTask" in state["Resource"]
    }


def command(state: dict[str, Any]) -> Any:
    (override,) = state["Parameters"]["Overrides"]["ContainerOverrides"]
    return override.get("Command", override.get("Command.$"))


def path(asl: dict[str, Any], start: str, stop: str) -> list[str]:
    """The states from ``start`` to ``stop`` following Next and a Choice's Default."""
    names = [start]
    while names[-1] != stop:
        state = asl["States"][names[-1]]
        names.append(state.get("Next") or state["Default"])
    return names


def statements(template: Template) -> list[dict[str, Any]]:
    role = only_logical_id(template, "AWS::IAM::Role", "OrchestrationStateMachineRole")
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_schedule_starts_a_full_run_of_the_state_machine_nightly(machine: Template) -> None:
    (rule,) = resources(machine, "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 1 * * ? *)"
    (target,) = props["Targets"]
    state_machine = only_logical_id(
        machine, "AWS::StepFunctions::StateMachine", "OrchestrationStateMachine"
    )
    assert target["Arn"] == {"Ref": state_machine}
    assert json.loads(target["Input"]) == {"migrateOnly": False}
    assert "EcsParameters" not in target, "no task is started around the state machine"


def test_another_schedule_such_as_hourly_is_a_setting() -> None:
    (rule,) = resources(build(dev(job_schedule="rate(1 hour)")), "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"


def test_an_execution_waits_until_it_is_the_oldest_running_one(machine: Template) -> None:
    asl = definition(machine)
    assert path(asl, asl["StartAt"], "ListRunning") == ["Settle", "ListRunning"]
    listing = asl["States"]["ListRunning"]
    assert listing["Resource"].endswith(":states:::aws-sdk:sfn:listExecutions")
    # A throttled look is tried again rather than failing the night.
    assert [r["ErrorEquals"] for r in listing["Retry"]] == [["States.ALL"]]
    assert listing["Parameters"] == {
        "StateMachineArn.$": "$$.StateMachine.Id",
        "StatusFilter": "RUNNING",
        "MaxResults": 100,
    }
    # Newest first: the last ARN listed is the oldest RUNNING execution.
    assert asl["States"]["Oldest"]["Parameters"] == {
        "oldest.$": "States.ArrayGetItem($.queue.arns, States.MathAdd($.queue.count, -1))"
    }
    (mine,) = asl["States"]["IsItMyTurn"]["Choices"]
    assert mine == {
        "Variable": "$.queue.oldest",
        "StringEqualsPath": "$$.Execution.Id",
        "Next": "MyTurn",
    }
    assert asl["States"]["IsItMyTurn"]["Default"] == "WaitForTurn"
    (unlisted,) = asl["States"]["AmIListed"]["Choices"]
    assert unlisted["Next"] == "WaitForTurn"
    assert asl["States"]["WaitForTurn"]["Next"] == "ListRunning"


def test_the_queue_reads_only_its_own_executions(machine: Template) -> None:
    (listing,) = [s for s in statements(machine) if s["Action"] == "states:ListExecutions"]
    assert listing["Resource"]["Fn::Join"][1][-1] == ":stateMachine:wxhub-dev-job"
    (machine_resource,) = resources(machine, "AWS::StepFunctions::StateMachine").values()
    assert machine_resource["Properties"]["StateMachineName"] == "wxhub-dev-job"


def test_the_schema_is_migrated_once_before_any_shard(machine: Template) -> None:
    asl = definition(machine)
    assert path(asl, "MyTurn", "Aggregate") == [
        "MyTurn",
        "Migrate",
        "MigrateOnly",
        "Shards",
        "Ingest",
        "Aggregate",
    ]
    migrations = [name for name, state in ecs_tasks(asl).items() if "migrate" in command(state)]
    assert migrations == ["Migrate"]
    assert command(asl["States"]["Migrate"]) == ["wxhub", "migrate"]


def test_a_deploys_execution_stops_after_the_migration(machine: Template) -> None:
    choice = definition(machine)["States"]["MigrateOnly"]
    (only,) = choice["Choices"]
    assert only["And"] == [
        {"Variable": "$.migrateOnly", "IsPresent": True},
        {"Variable": "$.migrateOnly", "BooleanEquals": True},
    ]
    assert definition(machine)["States"][only["Next"]]["Type"] == "Succeed"


def test_each_shard_ingests_its_share_without_migrating_or_aggregating(machine: Template) -> None:
    states = definition(machine)["States"]
    items = states["Shards"]["Result"]
    assert [item["command"] for item in items] == [
        ["wxhub", "ingest", "--shard", f"{k}/3", "--wait", *SOURCES] for k in (1, 2, 3)
    ]
    ingest = states["Ingest"]
    assert ingest["ItemsPath"] == "$.shards"
    assert ingest["MaxConcurrency"] == 2
    (shard,) = ingest["ItemProcessor"]["States"].values()
    assert command(shard) == "$.command"


def test_sixty_four_shards_are_a_setting(machine: Template) -> None:
    states = definition(build(dev(job_shards=64, job_max_concurrent_shards=16)))["States"]
    commands = [item["command"] for item in states["Shards"]["Result"]]
    assert len(commands) == 64
    assert commands[0] == ingest_command(SOURCES, 1, 64)
    assert commands[-1][:4] == ["wxhub", "ingest", "--shard", "64/64"]
    assert states["Ingest"]["MaxConcurrency"] == 16


def test_one_aggregate_runs_after_every_shard_has_loaded(machine: Template) -> None:
    states = definition(machine)["States"]
    assert states["Ingest"]["Next"] == "Aggregate"
    assert command(states["Aggregate"]) == ["wxhub", "aggregate", "--wait"]
    assert states[states["Aggregate"]["Next"]]["Type"] == "Succeed"


def test_any_failure_fails_the_execution(machine: Template) -> None:
    text = json.dumps(definition(machine))
    # Nothing catches an error, and the Map state tolerates no failed shard.
    assert '"Catch"' not in text
    assert "ToleratedFailure" not in text
    for state in ecs_tasks(definition(machine)).values():
        # Only a RunTask that ECS refused is tried again, never a task that ran and failed.
        assert [r["ErrorEquals"] for r in state["Retry"]] == [["ECS.AmazonECSException"]]


def test_every_task_is_a_private_fargate_task_of_the_job_family_that_is_waited_for(
    machine: Template,
) -> None:
    tasks = ecs_tasks(definition(machine))
    assert sorted(tasks) == ["Aggregate", "IngestShard", "Migrate"]
    group = only_logical_id(machine, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    for state in tasks.values():
        assert state["Resource"].endswith(":states:::ecs:runTask.sync")
        params = state["Parameters"]
        # The family: ECS runs its latest ACTIVE revision (see orchestration.py).
        assert params["TaskDefinition"] == "wxhub-dev-job"
        assert params["LaunchType"] == "FARGATE"
        assert params["NetworkConfiguration"]["AwsvpcConfiguration"] == {
            "Subnets": [
                "<VpcPrivateSubnet1Subnet536B997A>",
                "<VpcPrivateSubnet2Subnet3788AAA1>",
            ],
            "SecurityGroups": [f"<{group}.GroupId>"],
            "AssignPublicIp": "DISABLED",
        }
        assert state["ResultPath"] is None


def test_a_separate_migration_task_definition_runs_the_migration_only() -> None:
    template = build(dev(), separate_migration=True)
    tasks = ecs_tasks(definition(template))
    assert tasks["Migrate"]["Parameters"]["TaskDefinition"] == "wxhub-dev-migrate"
    (override,) = tasks["Migrate"]["Parameters"]["Overrides"]["ContainerOverrides"]
    assert override["Name"] == "migrate"
    assert tasks["IngestShard"]["Parameters"]["TaskDefinition"] == "wxhub-dev-job"
    # Each in its own security group: the migration's, the job's.
    migration_group = only_logical_id(template, "AWS::EC2::SecurityGroup", "MigrationSecurity")
    job_group = only_logical_id(template, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    groups = {
        name: state["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        for name, state in tasks.items()
    }
    assert groups == {
        "Migrate": [f"<{migration_group}.GroupId>"],
        "IngestShard": [f"<{job_group}.GroupId>"],
        "Aggregate": [f"<{job_group}.GroupId>"],
    }
    (run_task,) = [s for s in statements(template) if s["Action"] == "ecs:RunTask"]
    families = [r["Fn::Join"][1][-1] for r in run_task["Resource"]]
    assert families == [":task-definition/wxhub-dev-job:*", ":task-definition/wxhub-dev-migrate:*"]
    (pass_role,) = [s for s in statements(template) if s["Action"] == "iam:PassRole"]
    assert len(pass_role["Resource"]) == 4


def test_the_role_runs_the_job_family_in_its_cluster_and_follows_only_its_tasks(
    machine: Template,
) -> None:
    cluster = only_logical_id(machine, "AWS::ECS::Cluster", "Cluster")
    by_action = {json.dumps(s["Action"]): s for s in statements(machine)}
    run = by_action['"ecs:RunTask"']
    assert run["Resource"]["Fn::Join"][1][-1] == ":task-definition/wxhub-dev-job:*"
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}
    follow = by_action['["ecs:StopTask", "ecs:DescribeTasks"]']
    assert follow["Resource"]["Fn::Join"][1][-3:] == [":task/", {"Ref": cluster}, "/*"]
    tag = by_action['"ecs:TagResource"']
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    passed = by_action['"iam:PassRole"']
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert {r["Fn::GetAtt"][0] for r in passed["Resource"]} == {
        only_logical_id(machine, "AWS::IAM::Role", "JobTaskTaskRole"),
        only_logical_id(machine, "AWS::IAM::Role", "JobTaskExecutionRole"),
    }
    sync_rule = by_action['["events:PutTargets", "events:PutRule", "events:DescribeRule"]']
    assert sync_rule["Resource"]["Fn::Join"][1][-1] == (
        ":rule/StepFunctionsGetEventsForECSTaskRule"
    )


def test_a_run_times_out_after_the_setting_and_is_logged(machine: Template) -> None:
    asl = definition(build(dev(job_timeout_hours=5)))
    assert asl["TimeoutSeconds"] == 5 * 3600
    (state_machine,) = resources(machine, "AWS::StepFunctions::StateMachine").values()
    props = state_machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    group = resources(machine, "AWS::Logs::LogGroup")[
        only_logical_id(machine, "AWS::Logs::LogGroup", "OrchestrationLogs")
    ]
    assert group["Properties"]["LogGroupName"] == "/aws/vendedlogs/states/wxhub-dev-job"
    assert group["Properties"]["RetentionInDays"] == 14


def test_a_failed_timed_out_or_aborted_execution_alarms_to_the_topic(machine: Template) -> None:
    (alarm,) = resources(machine, "AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    topic = {"Ref": only_logical_id(machine, "AWS::SNS::Topic", "Topic")}
    assert props["AlarmActions"] == [topic]
    assert props["OKActions"] == [topic]
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    metrics = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]
        for m in props["Metrics"]
        if "MetricStat" in m
    }
    assert set(metrics) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    state_machine = only_logical_id(
        machine, "AWS::StepFunctions::StateMachine", "OrchestrationStateMachine"
    )
    for stat in metrics.values():
        assert stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "StateMachineArn", "Value": {"Ref": state_machine}}
        ]
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)"
