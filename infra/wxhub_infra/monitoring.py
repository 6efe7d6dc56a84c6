"""Where wxhub's logs go, and what wakes someone up: one SNS topic for every alarm."""

from __future__ import annotations

import functools

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from wxhub_infra.settings import EnvironmentSettings

# The app's own metrics (Embedded Metric Format): the first written by both the API and the
# job, the second by the job once per run that succeeded through aggregation (wxhub.job).
DB_CONNECTION_FAILURES = "DatabaseConnectionFailures"
RUNS_SUCCEEDED = "RunsSucceeded"
# A nightly run, plus two hours of slack for a late or long one, before anyone is woken.
HOURS_WITHOUT_SUCCESSFUL_RUN = 26
ALB_5XX_PERCENT_THRESHOLD = 5
# Every API answer is an index seek or a cached page (docs/benchmarks.md): milliseconds.
API_P99_LATENCY_SECONDS_THRESHOLD = 1
RDS_CPU_PERCENT_THRESHOLD = 80
RDS_FREE_STORAGE_BYTES_THRESHOLD = 2 * 1024**3
# Below this MySQL is about to swap (and a db.t3.micro has only 1 GiB in all).
RDS_FREEABLE_MEMORY_BYTES_THRESHOLD = 64 * 1024**2
# A db.t3.micro earns 12 credits an hour (one credit: one vCPU at 100 % for a minute); 20 left
# is ten minutes of both vCPUs flat out before it runs on surplus credits (billed) or slows.
RDS_CPU_CREDIT_BALANCE_THRESHOLD = 20


def notifying_alarm(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    action: cloudwatch.IAlarmAction,
    description: str,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator,
    evaluation_periods: int,
    missing_data: cloudwatch.TreatMissingData,
    datapoints_to_alarm: int | None = None,
) -> cloudwatch.Alarm:
    """An alarm on ``metric`` that sends both its alarm and its recovery to ``action``.

    Every alarm of the app is declared through here (this module's, the Aurora cluster's, the
    job's state machine's), so each says only what differs: what it watches, when it fires,
    and whether silence counts as breaching (a metric that is only written when something
    happens: not breaching; one that must keep coming: breaching).
    """
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        metric=metric,
        alarm_description=description,
        threshold=threshold,
        comparison_operator=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=missing_data,
    )
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm


def is_burstable(db_instance_class: str) -> bool:
    """Whether an RDS class runs on CPU credits: the T families (db.t3.micro, db.t4g.small)."""
    return db_instance_class.removeprefix("db.").startswith("t")


class Monitoring(Construct):
    """The alarm topic, the log groups of each component, and the alarms on them.

    Built first, so the services can be handed their log groups; the alarms are added once the
    things they watch exist (``watch_*``), which keeps every dependency an explicit argument.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings):
        super().__init__(scope, construct_id)
        self._settings = settings
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"wxhub {settings.name} alarms")
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        # Every alarm of this construct, sent to the topic.
        self._alarm = functools.partial(
            notifying_alarm, self, action=cloudwatch_actions.SnsAction(self.topic)
        )
        # The API's log stream carries gunicorn's access log lines (with RequestLatency);
        # the job's carries ingestion and aggregation, which run in one process (`wxhub run`).
        self.api_logs = self._log_group("ApiLogs", f"/wxhub/{settings.name}/api")
        self.job_logs = self._log_group("JobLogs", f"/wxhub/{settings.name}/job")

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=self._settings.log_retention,
            # Named groups would block re-creating the stack if they outlived it.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _app_metric(self, name: str, service: str, period: Duration) -> cloudwatch.Metric:
        """The sum of one of wxhub's own metrics (Embedded Metric Format) for ``service``."""
        return cloudwatch.Metric(
            namespace=self._settings.metrics_namespace,
            metric_name=name,
            dimensions_map={"Service": service},
            statistic="Sum",
            period=period,
        )

    def _db_connection_failures_alarm(self, service: str) -> cloudwatch.Alarm:
        """The API and the job write the same metric, each under its own ``Service``: one
        alarm each, so the message says which lost the database."""
        return self._alarm(
            f"{service.capitalize()}DatabaseConnectionFailures",
            self._app_metric(DB_CONNECTION_FAILURES, service, Duration.minutes(5)),
            description=f"wxhub {service} could not connect to the database",
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def watch_api(
        self,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        min_healthy_hosts: int,
    ) -> None:
        """Alarms on the API: database connectivity, 5xx rate, p99 latency, unhealthy targets,
        and fewer healthy targets than ``min_healthy_hosts`` (the service's minimum count)."""
        self.api_db_connection_failures = self._db_connection_failures_alarm("api")
        period = Duration.minutes(5)
        errors_percent = cloudwatch.MathExpression(
            # Errors from the targets and from the ALB itself (e.g. no healthy target), as a
            # share of all requests; no requests is no data, which is not an alarm.
            expression="100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests",
            using_metrics={
                "target5xx": load_balancer.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=period, statistic="Sum"
                ),
                "elb5xx": load_balancer.metrics.http_code_elb(
                    elbv2.HttpCodeElb.ELB_5XX_COUNT, period=period, statistic="Sum"
                ),
                "requests": load_balancer.metrics.request_count(period=period, statistic="Sum"),
            },
            label="5xx responses (%)",
            period=period,
        )
        self.api_5xx_rate = self._alarm(
            "Api5xxRate",
            errors_percent,
            description=f"more than {ALB_5XX_PERCENT_THRESHOLD}% of API requests answered 5xx",
            threshold=ALB_5XX_PERCENT_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.api_unhealthy_hosts = self._alarm(
            "ApiUnhealthyHosts",
            target_group.metrics.unhealthy_host_count(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            description="an API task fails the /healthz check of the load balancer",
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.api_healthy_hosts = self._alarm(
            "ApiHealthyHosts",
            target_group.metrics.healthy_host_count(
                period=Duration.minutes(1), statistic="Minimum"
            ),
            description=(
                f"fewer than {min_healthy_hosts} healthy API task(s) behind the load "
                "balancer for 3 minutes"
            ),
            threshold=min_healthy_hosts,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            # The load balancer reports the count every minute; none is as bad as zero.
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.api_p99_latency = self._alarm(
            "ApiP99Latency",
            target_group.metrics.target_response_time(period=period, statistic="p99"),
            description=(
                f"99th percentile of API response times above "
                f"{API_P99_LATENCY_SECONDS_THRESHOLD} s for 15 minutes"
            ),
            threshold=API_P99_LATENCY_SECONDS_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            # No requests, no response times: not an alarm.
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def watch_job(self, *, cluster: ecs.ICluster) -> None:
        """Alarms on the job: database connectivity, and any run that stops badly.

        ECS reports every task stop as an event; the job's failures are the stops of a task of
        its family (the state machine's shards and aggregation) or of the migration task's (each
        execution's `wxhub migrate`, the deploy's included, which logs to the job's log group)
        with a non-zero container exit code, or that never started (no exit code at all).
        """
        self.job_db_connection_failures = self._db_connection_failures_alarm("job")
        stack = Stack.of(self)
        family_arn_prefixes = [
            {
                "prefix": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:"
                f"task-definition/{family}:"
            }
            for family in (self._settings.job_family, self._settings.migration_family)
        ]
        stopped_job = {
            "clusterArn": [cluster.cluster_arn],
            "taskDefinitionArn": family_arn_prefixes,
            "lastStatus": ["STOPPED"],
        }
        target = events_targets.SnsTopic(self.topic)
        self.job_exited_non_zero_rule = events.Rule(
            self,
            "JobExitedNonZero",
            description="the ingestion job exited with a non-zero code",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={**stopped_job, "containers": {"exitCode": [{"anything-but": 0}]}},
            ),
            targets=[target],
        )
        self.job_failed_to_start_rule = events.Rule(
            self,
            "JobFailedToStart",
            description="the ingestion job could not start (image, secret or network)",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={**stopped_job, "stopCode": ["TaskFailedToStart"]},
            ),
            targets=[target],
        )

    def watch_runs(self) -> None:
        """The alarm of a silent night: no run succeeded through aggregation in 26 hours.

        Watches the job's own ``RunsSucceeded`` (1 per run that aggregated without a failed
        file), so it fires whatever kept the data from arriving: a schedule that never fired
        or was deleted, a run that failed, hung or never started. Missing data is breaching:
        a run that does not happen writes nothing. A new environment therefore alarms 26 hours
        after its deploy unless a run has succeeded by then.
        """
        # 26 hourly periods, all without a success: CloudWatch evaluates at most one day of
        # periods shorter than an hour, and up to seven days of hourly ones.
        self.no_successful_run = self._alarm(
            "NoSuccessfulRun",
            self._app_metric(RUNS_SUCCEEDED, "job", Duration.hours(1)),
            description=(
                f"no ingestion run succeeded in the last {HOURS_WITHOUT_SUCCESSFUL_RUN} hours"
            ),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=HOURS_WITHOUT_SUCCESSFUL_RUN,
            datapoints_to_alarm=HOURS_WITHOUT_SUCCESSFUL_RUN,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

    def watch_schedule(self, *, rule: events.IRule) -> None:
        """An alarm when the schedule fires but cannot start its target (EventBridge's
        ``FailedInvocations``: a missing permission, a bad task definition, no capacity)."""
        failed = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )
        self.schedule_failed_invocations = self._alarm(
            "ScheduleFailedInvocations",
            failed,
            description="the job's schedule fired but could not start the job",
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def watch_database(self, *, instance: rds.IDatabaseInstance) -> None:
        """Alarms on RDS: sustained CPU, a disk about to fill, memory about to run out, and
        (on a burstable class) CPU credits about to run out."""
        period = Duration.minutes(5)
        self.rds_cpu = self._alarm(
            "DatabaseCpu",
            instance.metric_cpu_utilization(period=period),
            description=f"database CPU above {RDS_CPU_PERCENT_THRESHOLD}% for 15 minutes",
            threshold=RDS_CPU_PERCENT_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.rds_free_storage = self._alarm(
            "DatabaseFreeStorage",
            instance.metric_free_storage_space(period=period),
            description="less than 2 GiB of database storage left",
            threshold=RDS_FREE_STORAGE_BYTES_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.rds_freeable_memory = self._alarm(
            "DatabaseFreeableMemory",
            instance.metric_freeable_memory(period=period),
            description="less than 64 MiB of database memory free for 15 minutes",
            threshold=RDS_FREEABLE_MEMORY_BYTES_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.rds_cpu_credits: cloudwatch.Alarm | None = None
        if is_burstable(self._settings.db_instance_class):
            self.rds_cpu_credits = self._alarm(
                "DatabaseCreditBalance",
                instance.metric("CPUCreditBalance", period=period, statistic="Minimum"),
                description=(
                    f"fewer than {RDS_CPU_CREDIT_BALANCE_THRESHOLD} CPU credits left on the "
                    "burstable database instance for 15 minutes"
                ),
                threshold=RDS_CPU_CREDIT_BALANCE_THRESHOLD,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=3,
                missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
