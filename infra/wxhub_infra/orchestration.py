"""The nightly run as a Step Functions state machine: one at a time, migrate, N shards, aggregate.

An EventBridge rule starts an execution on the job's schedule. Each execution:

1. **Queue.** Waits ``SETTLE_SECONDS``, lists the state machine's RUNNING executions
   (``sfn:ListExecutions``, newest first) and goes on only when the oldest of them is itself;
   otherwise it waits ``QUEUE_POLL_SECONDS`` and looks again. So executions run one after the
   other in the order they started, none is dropped, and a deploy's migration (an execution
   with ``{"migrateOnly": true}``, see .github/scripts/run-migrations) queues like any other.
   The settle wait is there because ListExecutions is eventually consistent: by the time an
   execution looks, every execution started before it is listed.
2. **Migrate.** One ECS task, ``wxhub migrate``, of the migration task definition (the one
   with the master user's secret, migration_task.py) in its own security group: the job's
   database user may not change the schema.
3. With ``migrateOnly``, it stops there (the deploy's case).
4. **Ingest.** A Map state of ``job_shards`` N tasks, ``wxhub ingest --shard K/N`` for
   K = 1..N, at most ``job_max_concurrent_shards`` at a time. ``ingest --shard`` neither
   migrates nor aggregates (it checks the schema is current and fails if not).
5. **Aggregate.** One task, ``wxhub aggregate`` (the whole queue, once every shard is in).

Any task that fails (a non-zero exit, a task that cannot start) fails the execution, and a
failed, timed-out or aborted execution raises the ``JobExecutionsFailed`` alarm.

Every task names its task definition (the job's, the migration's) by family, not by revision:
ECS then runs the latest ACTIVE revision. A revision CloudFormation replaces is deregistered,
and ECS refuses to start tasks of a deregistered revision, so a pinned revision would fail a run
that a deploy overtakes; and the deploy registers the new image's revision of both families
before it migrates (through this state machine), so the migration runs the new image.

The ECS steps are written as Amazon States Language (CustomState) rather than with
``EcsRunTask``, whose generated policy lets the state machine stop and describe every task in
the account; here the role may run the job's and the migration's families in this cluster,
pass their roles and no other, and stop and describe tasks of this cluster only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from wxhub_infra.monitoring import notifying_alarm
from wxhub_infra.settings import EnvironmentSettings

SETTLE_SECONDS = 10
QUEUE_POLL_SECONDS = 60
# The rule the .sync ECS integration creates in the account to hear of task state changes.
ECS_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"
# What the schedule passes; a deploy passes {"migrateOnly": true}. A start without input
# ({}) is a full run, as the schedule's.
SCHEDULED_INPUT = {"migrateOnly": False}

MIGRATE_COMMAND = ["wxhub", "migrate"]
# --wait: a step that found its lock held would otherwise exit 0 without doing its work.
AGGREGATE_COMMAND = ["wxhub", "aggregate", "--wait"]


def ingest_command(sources: Sequence[str], shard: int, shards: int) -> list[str]:
    """The command of shard ``shard`` (1-based) of ``shards``: load its share, nothing else."""
    return ["wxhub", "ingest", "--shard", f"{shard}/{shards}", "--wait", *sources]


def shard_items(sources: Sequence[str], shards: int) -> list[dict[str, Any]]:
    """The Map state's items: one command per shard, written out in the template."""
    return [
        {"shard": f"{shard}/{shards}", "command": ingest_command(sources, shard, shards)}
        for shard in range(1, shards + 1)
    ]


def state_machine_name(settings: EnvironmentSettings) -> str:
    """Fixed, so the role's policy can name the state machine without a circular reference."""
    return f"wxhub-{settings.name}-job"


class Orchestration(Construct):
    """The state machine of the nightly run, its schedule, and the alarm on failed runs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        cluster: ecs.ICluster,
        subnet_ids: Sequence[str],
        security_group: ec2.ISecurityGroup,
        task_definition: ecs.TaskDefinition,
        container_name: str,
        sources: Sequence[str],
        alarm_topic: sns.ITopic,
        migration_task_definition: ecs.TaskDefinition | None = None,
        migration_container_name: str | None = None,
        migration_security_group: ec2.ISecurityGroup | None = None,
    ):
        super().__init__(scope, construct_id)
        self._settings = settings
        self._cluster = cluster
        self._subnet_ids = list(subnet_ids)
        migration = migration_task_definition or task_definition
        migration_container = migration_container_name or container_name
        migration_network = migration_security_group or security_group
        stack = Stack.of(self)
        name = state_machine_name(settings)
        self.state_machine_arn_by_name = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        definition = (
            self._queue()
            .next(
                self._run_task(
                    "Migrate",
                    migration,
                    migration_container,
                    MIGRATE_COMMAND,
                    migration_network,
                )
            )
            .next(
                sfn.Choice(self, "MigrateOnly")
                .when(
                    sfn.Condition.and_(
                        sfn.Condition.is_present("$.migrateOnly"),
                        sfn.Condition.boolean_equals("$.migrateOnly", True),
                    ),
                    sfn.Succeed(self, "Migrated", comment="a deploy's migration: nothing else"),
                )
                .otherwise(
                    self._shards(settings, sources)
                    .next(
                        self._ingest_map(settings, task_definition, container_name, security_group)
                    )
                    .next(
                        self._run_task(
                            "Aggregate",
                            task_definition,
                            container_name,
                            AGGREGATE_COMMAND,
                            security_group,
                        )
                    )
                    .next(sfn.Succeed(self, "Done"))
                )
            )
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The vendedlogs prefix keeps the Logs resource policy small (AWS's advice for
            # Step Functions log groups).
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(settings.job_timeout_hours),
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
            comment=f"wxhub {settings.name}: migrate, {settings.job_shards} shard(s), aggregate",
        )
        self._grant_tasks([task_definition, migration])
        # The dependency CloudFormation cannot see in the definition (it names the family).
        self.state_machine.node.add_dependency(task_definition, migration)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"start the wxhub job's state machine: {settings.job_schedule}",
            schedule=events.Schedule.expression(settings.job_schedule),
            targets=[
                events_targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object(SCHEDULED_INPUT),
                )
            ],
        )
        self.failed_executions_alarm = self._alarm_on_failed_executions(alarm_topic)

    def _queue(self) -> sfn.Chain:
        """Go on when this is the oldest RUNNING execution; until then wait and look again."""
        settle = sfn.Wait(
            self,
            "Settle",
            time=sfn.WaitTime.duration(Duration.seconds(SETTLE_SECONDS)),
            comment="let ListExecutions catch up with every execution started before this one",
        )
        list_running = tasks.CallAwsService(
            self,
            "ListRunning",
            service="sfn",
            action="listExecutions",
            parameters={
                "StateMachineArn": sfn.JsonPath.string_at("$$.StateMachine.Id"),
                "StatusFilter": "RUNNING",
                "MaxResults": 100,
            },
            iam_resources=[self.state_machine_arn_by_name],
            iam_action="states:ListExecutions",
            # Newest first; keep the ARNs only (the state's data is limited to 256 KiB).
            result_selector={
                "arns": sfn.JsonPath.list_at("$.Executions[*].ExecutionArn"),
                "count": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.Executions")),
            },
            result_path="$.queue",
        )
        # A read of our own executions: safe to repeat whatever went wrong (throttling, say).
        list_running.add_retry(
            errors=[sfn.Errors.ALL],
            interval=Duration.seconds(10),
            max_attempts=3,
            backoff_rate=2,
        )
        oldest = sfn.Pass(
            self,
            "Oldest",
            parameters={
                # The last of the list, newest first: the oldest RUNNING execution.
                "oldest.$": "States.ArrayGetItem($.queue.arns, States.MathAdd($.queue.count, -1))"
            },
            result_path="$.queue",
        )
        wait_turn = sfn.Wait(
            self,
            "WaitForTurn",
            time=sfn.WaitTime.duration(Duration.seconds(QUEUE_POLL_SECONDS)),
            comment="an older execution is running (a run, or a deploy's migration)",
        )
        my_turn = sfn.Pass(self, "MyTurn", result_path=sfn.JsonPath.DISCARD)
        wait_turn.next(list_running)
        settle.next(list_running).next(
            sfn.Choice(self, "AmIListed")
            # Not even this execution is listed yet: look again after the wait.
            .when(sfn.Condition.number_equals("$.queue.count", 0), wait_turn)
            .otherwise(
                oldest.next(
                    sfn.Choice(self, "IsItMyTurn")
                    .when(
                        sfn.Condition.string_equals_json_path("$.queue.oldest", "$$.Execution.Id"),
                        my_turn,
                    )
                    .otherwise(wait_turn)
                )
            )
        )
        return sfn.Chain.custom(settle, [my_turn], my_turn)

    def _run_task(
        self,
        state_id: str,
        task_definition: ecs.TaskDefinition,
        container_name: str,
        command: Sequence[str] | str,
        security_group: ec2.ISecurityGroup,
    ) -> sfn.CustomState:
        """An ECS RunTask that waits for the task to stop and fails unless it exited 0."""
        override: dict[str, Any] = {"Name": container_name}
        if isinstance(command, str):
            override["Command.$"] = command
        else:
            override["Command"] = list(command)
        return sfn.CustomState(
            self,
            state_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::ecs:runTask.sync",
                "Parameters": {
                    "Cluster": self._cluster.cluster_arn,
                    "TaskDefinition": task_definition.family,
                    "LaunchType": "FARGATE",
                    "PlatformVersion": "LATEST",
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "Subnets": self._subnet_ids,
                            "SecurityGroups": [security_group.security_group_id],
                            "AssignPublicIp": "DISABLED",
                        }
                    },
                    "Overrides": {"ContainerOverrides": [override]},
                    "PropagateTags": "TASK_DEFINITION",
                },
                # The task's description is large; the next state needs none of it.
                "ResultPath": sfn.JsonPath.DISCARD,
                "Retry": [
                    {
                        # RunTask refused (capacity, throttling): try again. A task that ran
                        # and failed (States.TaskFailed) is not retried.
                        "ErrorEquals": ["ECS.AmazonECSException"],
                        "IntervalSeconds": 30,
                        "MaxAttempts": 3,
                        "BackoffRate": 2,
                    }
                ],
            },
        )

    def _shards(self, settings: EnvironmentSettings, sources: Sequence[str]) -> sfn.Pass:
        return sfn.Pass(
            self,
            "Shards",
            comment=f"{settings.job_shards} ingest task(s), one per shard",
            result=sfn.Result.from_array(shard_items(sources, settings.job_shards)),
            result_path="$.shards",
        )

    def _ingest_map(
        self,
        settings: EnvironmentSettings,
        task_definition: ecs.TaskDefinition,
        container_name: str,
        security_group: ec2.ISecurityGroup,
    ) -> sfn.Map:
        ingest = sfn.Map(
            self,
            "Ingest",
            items_path="$.shards",
            max_concurrency=settings.job_max_concurrent_shards,
            # One output per shard would add up to more than a state may carry.
            result_path=sfn.JsonPath.DISCARD,
        )
        ingest.item_processor(
            self._run_task(
                "IngestShard", task_definition, container_name, "$.command", security_group
            )
        )
        return ingest

    def _grant_tasks(self, task_definitions: Sequence[ecs.TaskDefinition]) -> None:
        """Run the job's and the migration's families in this cluster, pass their roles (and
        no other), follow their tasks."""
        stack = Stack.of(self)
        role = self.state_machine.role
        families = {td.family: td for td in task_definitions}
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[
                    stack.format_arn(
                        service="ecs",
                        resource="task-definition",
                        resource_name=f"{family}:*",
                    )
                    for family in sorted(families)
                ],
                conditions={"ArnEquals": {"ecs:cluster": self._cluster.cluster_arn}},
            )
        )
        cluster_tasks = stack.format_arn(
            service="ecs", resource="task", resource_name=f"{self._cluster.cluster_name}/*"
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"], resources=[cluster_tasks]
            )
        )
        # PropagateTags: ECS authorizes the tags (Project, Environment) of a task it starts.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[cluster_tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        passed = []
        for task_definition in families.values():
            passed.append(task_definition.task_role.role_arn)
            if task_definition.execution_role is not None:
                passed.append(task_definition.execution_role.role_arn)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=passed,
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(service="events", resource="rule", resource_name=ECS_SYNC_RULE)
                ],
            )
        )

    def _alarm_on_failed_executions(self, topic: sns.ITopic) -> cloudwatch.Alarm:
        """Any execution that failed, timed out or was aborted: the night's data is not in."""
        period = Duration.minutes(5)
        machine = self.state_machine
        ended_badly = cloudwatch.MathExpression(
            expression="FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)",
            using_metrics={
                "failed": machine.metric_failed(period=period, statistic="Sum"),
                "timedOut": machine.metric_timed_out(period=period, statistic="Sum"),
                "aborted": machine.metric_aborted(period=period, statistic="Sum"),
            },
            label="executions failed, timed out or aborted",
            period=period,
        )
        return notifying_alarm(
            self,
            "JobExecutionsFailed",
            ended_badly,
            action=cloudwatch_actions.SnsAction(topic),
            description=(
                f"a run of the wxhub {self._settings.name} job (state machine "
                f"{state_machine_name(self._settings)}) failed, timed out or was aborted"
            ),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
