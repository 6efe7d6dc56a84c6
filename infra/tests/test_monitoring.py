"""The alarm topic, the log groups, and every alarm that feeds the topic."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Template

from tests.conftest import bare_stack, dev, only_logical_id, prod, resources
from wxhub_infra.monitoring import Monitoring
from wxhub_infra.settings import EnvironmentSettings


def build(settings: EnvironmentSettings, min_healthy_hosts: int = 1) -> Template:
    stack = bare_stack()
    monitoring = Monitoring(stack, "Monitoring", settings=settings)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    load_balancer = elbv2.ApplicationLoadBalancer(stack, "Alb", vpc=vpc)
    target_group = elbv2.ApplicationTargetGroup(stack, "Targets", vpc=vpc, port=8000)
    load_balancer.add_listener("Http", port=80, default_target_groups=[target_group], open=False)
    monitoring.watch_api(
        load_balancer=load_balancer,
        target_group=target_group,
        min_healthy_hosts=min_healthy_hosts,
    )
    monitoring.watch_job(cluster=ecs.Cluster(stack, "Cluster", vpc=vpc))
    monitoring.watch_runs()
    monitoring.watch_schedule(
        rule=events.Rule(
            stack, "Schedule", schedule=events.Schedule.expression("cron(0 1 * * ? *)")
        )
    )
    monitoring.watch_database(
        instance=rds.DatabaseInstance.from_database_instance_attributes(
            stack,
            "Db",
            instance_identifier="wxhub-dev",
            instance_endpoint_address="db.example.com",
            port=3306,
            security_groups=[],
        )
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def monitoring() -> Template:
    return build(dev())


def alarm(template: Template, name: str) -> dict[str, Any]:
    props: dict[str, Any] = resources(template, "AWS::CloudWatch::Alarm")[
        only_logical_id(template, "AWS::CloudWatch::Alarm", f"Monitoring{name}")
    ]["Properties"]
    return props


def topic_ref(template: Template) -> dict[str, str]:
    return {"Ref": only_logical_id(template, "AWS::SNS::Topic", "MonitoringAlarmTopic")}


def test_there_is_one_alarm_topic_without_subscribers_by_default(monitoring: Template) -> None:
    monitoring.resource_count_is("AWS::SNS::Topic", 1)
    monitoring.resource_count_is("AWS::SNS::Subscription", 0)


def test_an_alarm_email_subscribes_to_the_topic() -> None:
    template = build(dev(alarm_email="ops@example.com"))
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_the_api_and_the_job_each_have_a_log_group_with_retention(monitoring: Template) -> None:
    for component in ("api", "job"):
        monitoring.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/wxhub/dev/{component}", "RetentionInDays": 14},
        )


def test_prod_logs_are_kept_for_90_days() -> None:
    stack = bare_stack()
    Monitoring(stack, "Monitoring", settings=prod())
    Template.from_stack(stack).has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/wxhub/prod/api", "RetentionInDays": 90}
    )


def test_every_alarm_notifies_the_topic_when_raised_and_when_cleared(monitoring: Template) -> None:
    alarms = resources(monitoring, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 12
    for found in alarms.values():
        assert found["Properties"]["AlarmActions"] == [topic_ref(monitoring)]
        assert found["Properties"]["OKActions"] == [topic_ref(monitoring)]


@pytest.mark.parametrize("service", ["api", "job"])
def test_a_single_database_connection_failure_in_five_minutes_raises_an_alarm(
    monitoring: Template, service: str
) -> None:
    props = alarm(monitoring, f"{service.capitalize()}DatabaseConnectionFailures")
    assert props["Namespace"] == "wxhub/dev"
    assert props["MetricName"] == "DatabaseConnectionFailures"
    assert props["Dimensions"] == [{"Name": "Service", "Value": service}]
    assert props["Statistic"] == "Sum"
    assert props["Period"] == 300
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"


def test_more_than_five_percent_5xx_answers_raise_an_alarm(monitoring: Template) -> None:
    props = alarm(monitoring, "Api5xxRate")
    assert props["Threshold"] == 5
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    queries = {m["Id"]: m for m in props["Metrics"]}
    assert queries["expr_1"]["Expression"] == (
        "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests"
    )
    names = {
        query_id: query["MetricStat"]["Metric"]["MetricName"]
        for query_id, query in queries.items()
        if "MetricStat" in query
    }
    assert names == {
        "target5xx": "HTTPCode_Target_5XX_Count",
        "elb5xx": "HTTPCode_ELB_5XX_Count",
        "requests": "RequestCount",
    }
    assert all(queries[i]["MetricStat"]["Stat"] == "Sum" for i in names)


def test_an_unhealthy_target_for_three_minutes_raises_an_alarm(monitoring: Template) -> None:
    props = alarm(monitoring, "ApiUnhealthyHosts")
    assert props["MetricName"] == "UnHealthyHostCount"
    assert props["Namespace"] == "AWS/ApplicationELB"
    assert props["Threshold"] == 1
    assert props["Period"] == 60
    assert props["EvaluationPeriods"] == 3
    assert {d["Name"] for d in props["Dimensions"]} == {"LoadBalancer", "TargetGroup"}


def test_database_cpu_above_80_percent_for_15_minutes_raises_an_alarm(
    monitoring: Template,
) -> None:
    props = alarm(monitoring, "DatabaseCpu")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/RDS", "CPUUtilization")
    assert props["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": "wxhub-dev"}]
    assert props["Threshold"] == 80
    assert props["Period"] * props["EvaluationPeriods"] == 900


def test_less_than_2_gib_of_database_storage_raises_an_alarm(monitoring: Template) -> None:
    props = alarm(monitoring, "DatabaseFreeStorage")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/RDS", "FreeStorageSpace")
    assert props["Threshold"] == 2 * 1024**3
    assert props["ComparisonOperator"] == "LessThanThreshold"


def rule(template: Template, name: str) -> dict[str, Any]:
    props: dict[str, Any] = resources(template, "AWS::Events::Rule")[
        only_logical_id(template, "AWS::Events::Rule", f"Monitoring{name}")
    ]["Properties"]
    return props


def test_a_job_task_stopping_with_a_non_zero_exit_code_notifies_the_topic(
    monitoring: Template,
) -> None:
    props = rule(monitoring, "JobExitedNonZero")
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    detail = pattern["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert detail["containers"] == {"exitCode": [{"anything-but": 0}]}
    assert detail["clusterArn"] == [
        {"Fn::GetAtt": [only_logical_id(monitoring, "AWS::ECS::Cluster", "Cluster"), "Arn"]}
    ]
    families = [prefix["prefix"]["Fn::Join"][1][-1] for prefix in detail["taskDefinitionArn"]]
    # the scheduled runs, and the migration task (a failed `wxhub migrate` is a failed job)
    assert families == [":task-definition/wxhub-dev-job:", ":task-definition/wxhub-dev-migrate:"]
    assert [t["Arn"] for t in props["Targets"]] == [topic_ref(monitoring)]


def test_a_job_task_that_fails_to_start_notifies_the_topic(monitoring: Template) -> None:
    props = rule(monitoring, "JobFailedToStart")
    assert props["EventPattern"]["detail"]["stopCode"] == ["TaskFailedToStart"]
    assert [t["Arn"] for t in props["Targets"]] == [topic_ref(monitoring)]


def test_eventbridge_may_publish_to_the_topic(monitoring: Template) -> None:
    (policy,) = resources(monitoring, "AWS::SNS::TopicPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == topic_ref(monitoring)


def test_no_successful_run_in_26_hours_raises_an_alarm_even_when_nothing_is_reported(
    monitoring: Template,
) -> None:
    props = alarm(monitoring, "NoSuccessfulRun")
    assert (props["Namespace"], props["MetricName"]) == ("wxhub/dev", "RunsSucceeded")
    assert props["Dimensions"] == [{"Name": "Service", "Value": "job"}]
    assert props["Statistic"] == "Sum"
    # Every hour of the last 26 without a success: CloudWatch allows that many hourly periods.
    assert props["Period"] == 3600
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 26
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "LessThanThreshold")
    # A run that never starts reports nothing at all.
    assert props["TreatMissingData"] == "breaching"


def test_a_schedule_that_cannot_start_the_job_raises_an_alarm(monitoring: Template) -> None:
    props = alarm(monitoring, "ScheduleFailedInvocations")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Events", "FailedInvocations")
    schedule = only_logical_id(monitoring, "AWS::Events::Rule", "Schedule")
    assert props["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": schedule}}]
    assert props["Statistic"] == "Sum"
    assert (props["Threshold"], props["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("minimum", [1, 2])
def test_fewer_healthy_api_targets_than_the_minimum_for_three_minutes_raises_an_alarm(
    minimum: int,
) -> None:
    props = alarm(build(dev(), min_healthy_hosts=minimum), "ApiHealthyHosts")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/ApplicationELB", "HealthyHostCount")
    assert {d["Name"] for d in props["Dimensions"]} == {"LoadBalancer", "TargetGroup"}
    assert props["Statistic"] == "Minimum"
    assert (props["Threshold"], props["ComparisonOperator"]) == (minimum, "LessThanThreshold")
    assert props["Period"] * props["EvaluationPeriods"] == 180
    assert props["TreatMissingData"] == "breaching"


def test_a_p99_api_latency_above_one_second_for_15_minutes_raises_an_alarm(
    monitoring: Template,
) -> None:
    props = alarm(monitoring, "ApiP99Latency")
    assert (props["Namespace"], props["MetricName"]) == (
        "AWS/ApplicationELB",
        "TargetResponseTime",
    )
    assert {d["Name"] for d in props["Dimensions"]} == {"LoadBalancer", "TargetGroup"}
    assert props["ExtendedStatistic"] == "p99"
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "GreaterThanThreshold")
    assert props["Period"] * props["EvaluationPeriods"] == 900
    assert props["TreatMissingData"] == "notBreaching"


def test_less_than_64_mib_of_free_database_memory_raises_an_alarm(monitoring: Template) -> None:
    props = alarm(monitoring, "DatabaseFreeableMemory")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/RDS", "FreeableMemory")
    assert props["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": "wxhub-dev"}]
    assert (props["Threshold"], props["ComparisonOperator"]) == (
        64 * 1024**2,
        "LessThanThreshold",
    )
    assert props["Period"] * props["EvaluationPeriods"] == 900


def test_a_burstable_database_running_out_of_cpu_credits_raises_an_alarm(
    monitoring: Template,
) -> None:
    props = alarm(monitoring, "DatabaseCreditBalance")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/RDS", "CPUCreditBalance")
    assert props["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": "wxhub-dev"}]
    assert props["Statistic"] == "Minimum"
    assert (props["Threshold"], props["ComparisonOperator"]) == (20, "LessThanThreshold")


def test_a_database_class_without_cpu_credits_has_no_credit_alarm() -> None:
    template = build(dev(db_instance_class="db.m7g.large"))
    ids = resources(template, "AWS::CloudWatch::Alarm")
    assert not [i for i in ids if i.startswith("MonitoringDatabaseCreditBalance")]
    assert len(ids) == 11
