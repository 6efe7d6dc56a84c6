"""The whole app as `cdk deploy` builds it, for dev and prod: wiring, rules, grants, outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match, Template

from app import build_app
from tests.conftest import (
    CERTIFICATE_ARN,
    egress_rules,
    ingress_rules,
    logical_id,
    only_logical_id,
    resources,
)

MAIN_OUTPUTS = {
    "ApiUrl",
    "RawBucketName",
    "AlarmTopicArn",
    "ClusterName",
    "ApiServiceName",
    "JobTaskDefinitionArn",
    "JobSecurityGroupId",
    "PrivateSubnetIds",
    "JobContainerName",
    "MigrationTaskDefinitionArn",
    "MigrationContainerName",
    "MigrationSecurityGroupId",
    "JobStateMachineArn",
}


def synth(env: str, **context: str) -> tuple[Stack, Stack]:
    """The registry and main stacks of ``env``, from context as the CLI would pass it."""
    app = build_app(App(context={"env": env, **context}))
    registry = app.node.find_child(f"Wxhub-{env}-registry")
    main = app.node.find_child(f"Wxhub-{env}")
    assert isinstance(registry, Stack)
    assert isinstance(main, Stack)
    return registry, main


def deployable(env: str) -> Template:
    _, main = synth(env, imageTag="0a1b2c3", certificateArn=CERTIFICATE_ARN)
    return Template.from_stack(main)


@pytest.fixture(scope="module")
def dev() -> Template:
    return deployable("dev")


@pytest.fixture(scope="module")
def prod() -> Template:
    return deployable("prod")


@pytest.fixture(scope="module", params=["dev", "prod"])
def either(request: pytest.FixtureRequest, dev: Template, prod: Template) -> Template:
    return dev if request.param == "dev" else prod


def group(template: Template, prefix: str) -> str:
    return only_logical_id(template, "AWS::EC2::SecurityGroup", prefix)


def designed_ingress(template: Template) -> set[tuple[Any, ...]]:
    alb = group(template, "ApiLoadBalancerSecurityGroup")
    api = group(template, "ApiServiceSecurityGroup")
    job = group(template, "IngestionJobSecurityGroup")
    migration = group(template, "MigrationSecurityGroup")
    database = group(template, "DatabaseSecurityGroup")
    return {
        (alb, "tcp", 443, 443, "0.0.0.0/0"),
        (alb, "tcp", 80, 80, "0.0.0.0/0"),
        (api, "tcp", 8000, 8000, alb),
        (database, "tcp", 3306, 3306, api),
        (database, "tcp", 3306, 3306, job),
        (database, "tcp", 3306, 3306, migration),
    }


def test_dev_opens_exactly_the_designed_inbound_rules(dev: Template) -> None:
    assert ingress_rules(dev) == designed_ingress(dev)


def test_prod_adds_only_https_from_the_task_groups_to_the_endpoints(prod: Template) -> None:
    endpoints = group(prod, "NetworkEndpointSecurityGroup")
    api = group(prod, "ApiServiceSecurityGroup")
    job = group(prod, "IngestionJobSecurityGroup")
    migration = group(prod, "MigrationSecurityGroup")
    assert ingress_rules(prod) == designed_ingress(prod) | {
        (endpoints, "tcp", 443, 443, api),
        (endpoints, "tcp", 443, 443, job),
        (endpoints, "tcp", 443, 443, migration),
    }


def test_outbound_rules_are_exactly_those_the_traffic_needs(dev: Template) -> None:
    alb = group(dev, "ApiLoadBalancerSecurityGroup")
    api = group(dev, "ApiServiceSecurityGroup")
    job = group(dev, "IngestionJobSecurityGroup")
    migration = group(dev, "MigrationSecurityGroup")
    database = group(dev, "DatabaseSecurityGroup")
    assert egress_rules(dev) == {
        (alb, "tcp", 8000, 8000, api),
        (api, "tcp", 443, 443, "0.0.0.0/0"),
        (api, "tcp", 3306, 3306, database),
        (job, "tcp", 443, 443, "0.0.0.0/0"),
        (job, "tcp", 3306, 3306, database),
        (migration, "tcp", 443, 443, "0.0.0.0/0"),
        (migration, "tcp", 3306, 3306, database),
        (database, "icmp", 252, 86, "255.255.255.255/32"),  # CDK's marker for "none"
    }


def test_no_ipv6_rule_exists(either: Template) -> None:
    assert "CidrIpv6" not in json.dumps(either.to_json())


# Every IAM statement of a main stack, dev or prod: the execution roles of the API and the job
# (4 each: pull the image, log in to ECR, write logs, read its own database secret), the
# migration task's execution role (6: the same, reading three secrets: the master's, the job's
# and the API's), the job's task role (read the raw bucket), the schedule's role (1: start the
# state machine), the state machine's role (8: list its own executions, deliver its logs, send
# traces, run the job's and the migration's families in the cluster, follow and stop those
# tasks, tag them, pass the four roles of the two families, the ECS events rule of .sync) and
# the flow log's role (1). A change is a grant added or removed: review it, then count again.
IAM_STATEMENTS = 25

# Actions that take no resource (IAM accepts only "*" for them).
UNSCOPED_ACTIONS = {
    "ecr:GetAuthorizationToken",
    # the state machine's log delivery to CloudWatch Logs
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # its X-Ray traces
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}


def policy_statements(template: Template) -> Iterator[dict[str, Any]]:
    for policy in resources(template, "AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            yield from policy["PolicyDocument"]["Statement"]


def counted_statements(template: Template) -> list[dict[str, Any]]:
    """Every statement, counted first: a check of each statement must not pass on none."""
    statements = list(policy_statements(template))
    assert len(statements) == IAM_STATEMENTS, [s["Action"] for s in statements]
    return statements


def test_no_iam_statement_allows_every_action_or_every_action_of_a_service(
    either: Template,
) -> None:
    statements = counted_statements(either)
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert action != "*", statement
            assert not re.fullmatch(r"[\w-]+:\*", action), statement


def test_only_actions_that_take_no_resource_are_granted_on_every_resource(
    either: Template,
) -> None:
    unscoped = {
        action
        for statement in policy_statements(either)
        if statement["Resource"] == "*"
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert unscoped == UNSCOPED_ACTIONS


def test_no_task_role_may_put_metrics_because_emf_goes_through_the_logs(either: Template) -> None:
    actions = json.dumps([s["Action"] for s in counted_statements(either)])
    assert "cloudwatch:" not in actions


def test_every_role_is_for_one_service_of_this_stack(either: Template) -> None:
    principals = set()
    for role in resources(either, "AWS::IAM::Role").values():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        principals.add(statement["Principal"]["Service"])
    assert principals == {
        "ecs-tasks.amazonaws.com",  # task and execution roles
        "events.amazonaws.com",  # the schedule's StartExecution
        "states.amazonaws.com",  # the state machine's RunTask
        "vpc-flow-logs.amazonaws.com",
        "monitoring.rds.amazonaws.com",  # enhanced monitoring
    }


def test_every_container_runs_the_image_tag_from_the_environment_repository(
    dev: Template,
) -> None:
    tasks = resources(dev, "AWS::ECS::TaskDefinition")
    assert len(tasks) == 3, "the API's, the job's and the migration's"
    images = set()
    for task in tasks.values():
        (definition,) = task["Properties"]["ContainerDefinitions"]
        images.add(json.dumps(definition["Image"]))
    assert len(images) == 1
    assert images.pop().endswith('"/wxhub-dev:0a1b2c3"]]}')


def test_an_image_digest_is_run_by_digest_in_every_container() -> None:
    digest = "sha256:" + "ab" * 32
    _, main = synth("prod", imageTag=digest, certificateArn=CERTIFICATE_ARN)
    tasks = resources(Template.from_stack(main), "AWS::ECS::TaskDefinition")
    assert len(tasks) == 3, "the API's, the job's and the migration's"
    for task in tasks.values():
        (definition,) = task["Properties"]["ContainerDefinitions"]
        assert json.dumps(definition["Image"]).endswith(f'"/wxhub-prod@{digest}"]]}}')


def secret_fields(template: Template, prefix: str) -> dict[str, list[Any]]:
    """Variable -> [secret reference, ':field::'] of the task definition starting ``prefix``."""
    task = resources(template, "AWS::ECS::TaskDefinition")[
        only_logical_id(template, "AWS::ECS::TaskDefinition", prefix)
    ]
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return {s["Name"]: s["ValueFrom"]["Fn::Join"][1] for s in definition["Secrets"]}


def db_fields(attachment: str) -> dict[str, list[Any]]:
    return {
        "DB_HOST": [{"Ref": attachment}, ":host::"],
        "DB_PORT": [{"Ref": attachment}, ":port::"],
        "DB_USER": [{"Ref": attachment}, ":username::"],
        "DB_PASSWORD": [{"Ref": attachment}, ":password::"],
        "DB_NAME": [{"Ref": attachment}, ":dbname::"],
    }


def attachment(template: Template, prefix: str) -> str:
    return only_logical_id(template, "AWS::SecretsManager::SecretTargetAttachment", prefix)


def test_the_api_and_the_job_each_log_in_with_their_own_secret_only(dev: Template) -> None:
    api, job = attachment(dev, "DatabaseApiCredentials"), attachment(dev, "DatabaseJobCredentials")
    assert secret_fields(dev, "ApiTaskDefinition") == db_fields(api)
    assert secret_fields(dev, "IngestionJobTaskDefinition") == db_fields(job)


def test_only_the_migration_task_has_the_master_secret_and_it_keeps_both_users(
    dev: Template,
) -> None:
    master = attachment(dev, "DatabaseCredentialsAttachment")
    job, api = attachment(dev, "DatabaseJobCredentials"), attachment(dev, "DatabaseApiCredentials")
    assert secret_fields(dev, "MigrationTaskDefinition") == {
        **db_fields(master),
        "WXHUB_DB_JOB_USER": [{"Ref": job}, ":username::"],
        "WXHUB_DB_JOB_PASSWORD": [{"Ref": job}, ":password::"],
        "WXHUB_DB_API_USER": [{"Ref": api}, ":username::"],
        "WXHUB_DB_API_PASSWORD": [{"Ref": api}, ":password::"],
    }
    # and only its execution role may read the master secret
    readers = [
        policy["Properties"]["Roles"]
        for policy in resources(dev, "AWS::IAM::Policy").values()
        if {"Ref": master}
        in [s["Resource"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    ]
    role = only_logical_id(dev, "AWS::IAM::Role", "MigrationTaskDefinitionExecutionRole")
    assert readers == [[{"Ref": role}]]


def test_each_execution_role_reads_exactly_the_secrets_of_its_task(dev: Template) -> None:
    master = attachment(dev, "DatabaseCredentialsAttachment")
    job, api = attachment(dev, "DatabaseJobCredentials"), attachment(dev, "DatabaseApiCredentials")
    expected = {
        "ApiTaskDefinitionExecutionRole": [api],
        "IngestionJobTaskDefinitionExecutionRole": [job],
        "MigrationTaskDefinitionExecutionRole": [master, job, api],
    }
    for prefix, secrets in expected.items():
        role = only_logical_id(dev, "AWS::IAM::Role", prefix)
        (policy,) = [
            p
            for p in resources(dev, "AWS::IAM::Policy").values()
            if p["Properties"]["Roles"] == [{"Ref": role}]
        ]
        read = [
            s["Resource"]["Ref"]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if "secretsmanager:GetSecretValue" in s["Action"]
        ]
        assert read == secrets, prefix


def test_metrics_go_to_the_namespace_of_the_environment(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Namespace": "wxhub/prod", "MetricName": "DatabaseConnectionFailures"},
    )


def test_the_outputs_are_exactly_those_of_the_contract_without_exports(either: Template) -> None:
    outputs = either.to_json()["Outputs"]
    assert set(outputs) == MAIN_OUTPUTS
    assert all("Export" not in output for output in outputs.values())


def test_the_outputs_name_what_the_deploy_flow_needs(dev: Template) -> None:
    outputs = dev.to_json()["Outputs"]
    assert outputs["JobContainerName"]["Value"] == "job"
    assert outputs["JobTaskDefinitionArn"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::ECS::TaskDefinition", "IngestionJobTaskDefinition")
    }
    assert outputs["JobSecurityGroupId"]["Value"] == {
        "Fn::GetAtt": [group(dev, "IngestionJobSecurityGroup"), "GroupId"]
    }
    assert outputs["PrivateSubnetIds"]["Value"] == {
        "Fn::Join": [
            ",",
            [
                {"Ref": only_logical_id(dev, "AWS::EC2::Subnet", "NetworkVpcappSubnet1")},
                {"Ref": only_logical_id(dev, "AWS::EC2::Subnet", "NetworkVpcappSubnet2")},
            ],
        ]
    }
    assert outputs["RawBucketName"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::S3::Bucket", "IngestionJobRawBucket")
    }
    assert outputs["AlarmTopicArn"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::SNS::Topic", "MonitoringAlarmTopic")
    }
    assert outputs["ClusterName"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::ECS::Cluster", "Cluster")
    }
    assert outputs["MigrationContainerName"]["Value"] == "migrate"
    assert outputs["MigrationTaskDefinitionArn"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::ECS::TaskDefinition", "MigrationTaskDefinition")
    }
    assert outputs["MigrationSecurityGroupId"]["Value"] == {
        "Fn::GetAtt": [group(dev, "MigrationSecurityGroup"), "GroupId"]
    }
    assert outputs["ApiServiceName"]["Value"] == {
        "Fn::GetAtt": [only_logical_id(dev, "AWS::ECS::Service", "ApiService"), "Name"]
    }


def test_the_api_url_is_https_on_the_load_balancer_name(dev: Template) -> None:
    alb = only_logical_id(dev, "AWS::ElasticLoadBalancingV2::LoadBalancer", "ApiLoadBalancer")
    assert dev.to_json()["Outputs"]["ApiUrl"]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [alb, "DNSName"]}]]
    }


def test_the_api_url_is_the_domain_name_when_one_is_given() -> None:
    _, main = synth(
        "dev", imageTag="x", certificateArn=CERTIFICATE_ARN, domainName="weather.example.com"
    )
    outputs = Template.from_stack(main).to_json()["Outputs"]
    assert outputs["ApiUrl"]["Value"] == "https://weather.example.com"


def test_prod_is_multi_az_protected_private_docs_and_private_endpoints(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::RDS::DBInstance",
        {"MultiAZ": True, "DeletionProtection": True, "BackupRetentionPeriod": 14},
    )
    prod.resource_count_is("AWS::EC2::NatGateway", 0)
    prod.resource_count_is("AWS::EC2::VPCEndpoint", 5)
    prod.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like(
                    {"Environment": Match.array_with([{"Name": "WXHUB_API_DOCS", "Value": "off"}])}
                )
            ]
        },
    )


def test_dev_is_single_az_unprotected_with_one_nat_and_public_docs(dev: Template) -> None:
    dev.has_resource_properties(
        "AWS::RDS::DBInstance",
        {"MultiAZ": False, "DeletionProtection": False, "BackupRetentionPeriod": 1},
    )
    dev.resource_count_is("AWS::EC2::NatGateway", 1)
    dev.resource_count_is("AWS::EC2::VPCEndpoint", 1)
    dev.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like(
                    {"Environment": Match.array_with([{"Name": "WXHUB_API_DOCS", "Value": "on"}])}
                )
            ]
        },
    )


def test_everything_is_tagged_with_project_and_environment(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::ECS::Cluster",
        {"Tags": [{"Key": "Environment", "Value": "prod"}, {"Key": "Project", "Value": "wxhub"}]},
    )


def test_the_cluster_has_container_insights(dev: Template) -> None:
    dev.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


def test_the_stacks_are_environment_agnostic_so_synthesis_needs_no_aws_access(
    dev: Template,
) -> None:
    template = dict(dev.to_json())
    # The one table of every region (ELB's log delivery accounts) is about AWS, not this stack.
    mappings = template.pop("Mappings")
    assert [name for name in mappings if not name.startswith("AccessLogsElbLogAccounts")] == []
    text = json.dumps(template)
    assert "us-east-1" not in text.replace(CERTIFICATE_ARN, "")
    assert not re.search(r"\b\d{12}\b", text.replace(CERTIFICATE_ARN, ""))


def test_prod_stacks_refuse_deletion_and_dev_stacks_allow_it() -> None:
    for env, protected in (("dev", False), ("prod", True)):
        registry, main = synth(env, imageTag="x", certificateArn=CERTIFICATE_ARN)
        assert registry.termination_protection is protected
        assert main.termination_protection is protected


def test_without_image_tag_or_certificate_the_main_stack_reports_what_to_pass() -> None:
    registry, main = synth("dev")
    errors = Annotations.from_stack(main).find_error("*", Match.any_value())
    messages = sorted(str(e.entry.data) for e in errors)
    assert len(messages) == 2
    assert "-c certificateArn=" in messages[0]
    assert "-c imageTag=" in messages[1]
    assert Annotations.from_stack(registry).find_error("*", Match.any_value()) == []


def test_the_job_schedule_and_shards_come_from_context() -> None:
    _, main = synth(
        "dev",
        imageTag="x",
        certificateArn=CERTIFICATE_ARN,
        schedule="rate(1 hour)",
        jobShards="2",
    )
    template = Template.from_stack(main)
    (schedule,) = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in rule["Properties"]
    ]
    assert schedule["ScheduleExpression"] == "rate(1 hour)"
    (target,) = schedule["Targets"]
    state_machine = only_logical_id(
        template, "AWS::StepFunctions::StateMachine", "OrchestrationStateMachine"
    )
    assert target["Arn"] == {"Ref": state_machine}
    definition = json.dumps(resources(template, "AWS::StepFunctions::StateMachine"))
    assert '\\"--shard\\",\\"2/2\\"' in definition
    assert "3/" not in definition


def test_the_state_machine_runs_the_job_in_its_network_and_alarms_to_the_topic(
    dev: Template,
) -> None:
    (machine,) = resources(dev, "AWS::StepFunctions::StateMachine").values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    for subnet in ("NetworkVpcappSubnet1", "NetworkVpcappSubnet2"):
        assert only_logical_id(dev, "AWS::EC2::Subnet", subnet) in definition
    assert group(dev, "IngestionJobSecurityGroup") in definition
    assert "wxhub-dev-job" in definition
    alarm = resources(dev, "AWS::CloudWatch::Alarm")[
        only_logical_id(dev, "AWS::CloudWatch::Alarm", "OrchestrationJobExecutionsFailed")
    ]
    assert alarm["Properties"]["AlarmActions"] == [
        {"Ref": only_logical_id(dev, "AWS::SNS::Topic", "MonitoringAlarmTopic")}
    ]
    outputs = dev.to_json()["Outputs"]
    assert outputs["JobStateMachineArn"]["Value"] == {
        "Ref": only_logical_id(dev, "AWS::StepFunctions::StateMachine", "OrchestrationStateMachine")
    }


def test_the_state_machine_migrates_with_the_migration_task_and_may_run_and_pass_only_it(
    dev: Template,
) -> None:
    # The job's user may not change the schema: the Migrate step is the migration task (the
    # master secret) in its own security group; shards and aggregate are the job's.
    (machine,) = resources(dev, "AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(
        part if isinstance(part, str) else f"<{part.get('Ref') or part['Fn::GetAtt'][0]}>"
        for part in parts
    )
    states = json.loads(text)["States"]
    migrate = states["Migrate"]["Parameters"]
    assert migrate["TaskDefinition"] == "wxhub-dev-migrate"
    assert migrate["Overrides"]["ContainerOverrides"][0]["Name"] == "migrate"
    assert migrate["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"] == [
        f"<{group(dev, 'MigrationSecurityGroup')}>"
    ]
    assert states["Aggregate"]["Parameters"]["TaskDefinition"] == "wxhub-dev-job"
    assert states["Aggregate"]["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"][
        "SecurityGroups"
    ] == [f"<{group(dev, 'IngestionJobSecurityGroup')}>"]

    role = only_logical_id(dev, "AWS::IAM::Role", "OrchestrationStateMachineRole")
    statements = [
        statement
        for policy in resources(dev, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (run_task,) = [s for s in statements if s["Action"] == "ecs:RunTask"]
    assert [r["Fn::Join"][1][-1] for r in run_task["Resource"]] == [
        ":task-definition/wxhub-dev-job:*",
        ":task-definition/wxhub-dev-migrate:*",
    ]
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert {r["Fn::GetAtt"][0] for r in pass_role["Resource"]} == {
        only_logical_id(dev, "AWS::IAM::Role", prefix)
        for prefix in (
            "IngestionJobTaskDefinitionTaskRole",
            "IngestionJobTaskDefinitionExecutionRole",
            "MigrationTaskDefinitionTaskRole",
            "MigrationTaskDefinitionExecutionRole",
        )
    }


def test_no_statement_names_noaas_bucket_unless_a_ghcn_source_does(either: Template) -> None:
    statements = counted_statements(either)
    assert "noaa-ghcn-pds" not in json.dumps(statements)


def test_a_ghcn_region_from_context_reaches_the_job_with_its_read_grant_only() -> None:
    _, main = synth(
        "prod",
        imageTag="x",
        certificateArn=CERTIFICATE_ARN,
        ghcnSources="s3://noaa-ghcn-pds/csv.gz/by_station/,s3://noaa-ghcn-pds/ghcnd-stations.txt",
        jobState="IL",
    )
    template = Template.from_stack(main)
    statements = list(policy_statements(template))
    assert len(statements) == IAM_STATEMENTS + 2, [s["Action"] for s in statements]
    noaa = [s for s in statements if "noaa-ghcn-pds" in json.dumps(s)]
    assert noaa == [
        {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": "arn:aws:s3:::noaa-ghcn-pds"},
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": "arn:aws:s3:::noaa-ghcn-pds/*"},
    ]
    task_role = only_logical_id(template, "AWS::IAM::Role", "IngestionJobTaskDefinitionTaskRole")
    (holder,) = [
        policy
        for policy in resources(template, "AWS::IAM::Policy").values()
        if noaa[0] in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert holder["Properties"]["Roles"] == [{"Ref": task_role}]
    job = resources(template, "AWS::ECS::TaskDefinition")[
        only_logical_id(template, "AWS::ECS::TaskDefinition", "IngestionJobTaskDefinition")
    ]
    (definition,) = job["Properties"]["ContainerDefinitions"]
    assert definition["Command"][-2:] == [
        "s3://noaa-ghcn-pds/csv.gz/by_station/",
        "s3://noaa-ghcn-pds/ghcnd-stations.txt",
    ]
    assert {"Name": "WXHUB_STATE", "Value": "IL"} in definition["Environment"]


def test_the_healthy_hosts_alarm_fires_below_the_api_scaling_floor(either: Template) -> None:
    (target,) = resources(either, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    healthy = resources(either, "AWS::CloudWatch::Alarm")[
        only_logical_id(either, "AWS::CloudWatch::Alarm", "MonitoringApiHealthyHosts")
    ]["Properties"]
    assert healthy["Threshold"] == target["Properties"]["MinCapacity"]


def test_the_silent_night_and_schedule_alarms_watch_this_environment(either: Template) -> None:
    alarms = {
        props["Properties"]["MetricName"]: props["Properties"]
        for props in resources(either, "AWS::CloudWatch::Alarm").values()
        if "MetricName" in props["Properties"]
    }
    # The rule that starts the job's state machine.
    schedule = only_logical_id(either, "AWS::Events::Rule", "OrchestrationSchedule")
    assert alarms["FailedInvocations"]["Dimensions"] == [
        {"Name": "RuleName", "Value": {"Ref": schedule}}
    ]
    assert alarms["RunsSucceeded"]["Namespace"].startswith("wxhub/")


def test_the_load_balancer_is_behind_the_web_acl_and_logs_to_its_bucket(either: Template) -> None:
    (association,) = resources(either, "AWS::WAFv2::WebACLAssociation").values()
    alb = only_logical_id(either, "AWS::ElasticLoadBalancingV2::LoadBalancer", "ApiLoadBalancer")
    assert association["Properties"]["ResourceArn"] == {"Ref": alb}
    attributes = {
        a["Key"]: a["Value"]
        for a in resources(either, "AWS::ElasticLoadBalancingV2::LoadBalancer")[alb]["Properties"][
            "LoadBalancerAttributes"
        ]
    }
    log_bucket = only_logical_id(either, "AWS::S3::Bucket", "AccessLogsBucket")
    assert attributes["access_logs.s3.bucket"] == {"Ref": log_bucket}


def docs_setting(template: Template) -> str:
    for task in resources(template, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            for variable in container.get("Environment", []):
                if variable["Name"] == "WXHUB_API_DOCS":
                    value: str = variable["Value"]
                    return value
    raise AssertionError("no container has WXHUB_API_DOCS")


def test_prod_docs_for_allowed_cidrs_are_served_and_guarded_by_the_web_acl() -> None:
    _, main = synth(
        "prod",
        imageTag="0a1b2c3",
        certificateArn=CERTIFICATE_ARN,
        apiDocsCidrs="203.0.113.0/24",
    )
    template = Template.from_stack(main)
    assert docs_setting(template) == "on"
    (acl,) = resources(template, "AWS::WAFv2::WebACL").values()
    assert "DocsFromAllowedCidrs" in {rule["Name"] for rule in acl["Properties"]["Rules"]}
    (ip_set,) = resources(template, "AWS::WAFv2::IPSet").values()
    assert ip_set["Properties"]["Addresses"] == ["203.0.113.0/24"]


def test_prod_without_allowed_cidrs_serves_no_docs_and_has_no_docs_rule(prod: Template) -> None:
    assert docs_setting(prod) == "off"
    prod.resource_count_is("AWS::WAFv2::IPSet", 0)


def test_prod_tasks_have_no_route_to_the_internet_only_to_the_endpoints(prod: Template) -> None:
    routes = resources(prod, "AWS::EC2::Route")
    # The public subnets' route to the internet gateway (for the load balancer), nothing else.
    assert len(routes) == 2
    for route in routes.values():
        assert "GatewayId" in route["Properties"]
        assert "NatGatewayId" not in route["Properties"]
    (s3,) = [
        e["Properties"]
        for e in resources(prod, "AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    ]
    app_tables = {
        logical_id(a["Properties"]["RouteTableId"])
        for name, a in resources(prod, "AWS::EC2::SubnetRouteTableAssociation").items()
        if "app" in name
    }
    assert len(app_tables) == 2
    assert {logical_id(t) for t in s3["RouteTableIds"]} == app_tables


def test_no_task_needs_an_aws_api_that_has_no_endpoint(either: Template) -> None:
    # SSM Parameter Store would need its own endpoint without a NAT gateway (wxhub.config reads
    # it only with WXHUB_SSM_PREFIX); every other call is to ECR, Logs, Secrets Manager or S3.
    for task in resources(either, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            names = {v["Name"] for v in container.get("Environment", [])}
            assert "WXHUB_SSM_PREFIX" not in names


def test_prod_task_egress_is_https_and_mysql_only_with_no_route_beyond_aws(prod: Template) -> None:
    # Security groups cannot name the S3 gateway endpoint (its prefix list id is not known to a
    # region-agnostic template), so HTTPS stays open to any address; without a NAT gateway the
    # route tables make that the endpoints and the S3 gateway, nothing on the internet.
    api = group(prod, "ApiServiceSecurityGroup")
    job = group(prod, "IngestionJobSecurityGroup")
    database = group(prod, "DatabaseSecurityGroup")
    endpoints = group(prod, "NetworkEndpointSecurityGroup")
    task_rules = {rule for rule in egress_rules(prod) if rule[0] in (api, job)}
    assert task_rules == {
        (api, "tcp", 443, 443, endpoints),
        (job, "tcp", 443, 443, endpoints),
        (api, "tcp", 443, 443, "0.0.0.0/0"),
        (api, "tcp", 3306, 3306, database),
        (job, "tcp", 443, 443, "0.0.0.0/0"),
        (job, "tcp", 3306, 3306, database),
    }
    prod.resource_count_is("AWS::EC2::NatGateway", 0)
