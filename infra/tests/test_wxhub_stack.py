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
from tests.conftest import CERTIFICATE_ARN, egress_rules, ingress_rules, only_logical_id, resources

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
    database = group(template, "DatabaseSecurityGroup")
    return {
        (alb, "tcp", 443, 443, "0.0.0.0/0"),
        (alb, "tcp", 80, 80, "0.0.0.0/0"),
        (api, "tcp", 8000, 8000, alb),
        (database, "tcp", 3306, 3306, api),
        (database, "tcp", 3306, 3306, job),
    }


def test_dev_opens_exactly_the_designed_inbound_rules(dev: Template) -> None:
    assert ingress_rules(dev) == designed_ingress(dev)


def test_prod_adds_only_https_from_the_task_groups_to_the_endpoints(prod: Template) -> None:
    endpoints = group(prod, "NetworkEndpointSecurityGroup")
    api = group(prod, "ApiServiceSecurityGroup")
    job = group(prod, "IngestionJobSecurityGroup")
    assert ingress_rules(prod) == designed_ingress(prod) | {
        (endpoints, "tcp", 443, 443, api),
        (endpoints, "tcp", 443, 443, job),
    }


def test_outbound_rules_are_exactly_those_the_traffic_needs(dev: Template) -> None:
    alb = group(dev, "ApiLoadBalancerSecurityGroup")
    api = group(dev, "ApiServiceSecurityGroup")
    job = group(dev, "IngestionJobSecurityGroup")
    database = group(dev, "DatabaseSecurityGroup")
    assert egress_rules(dev) == {
        (alb, "tcp", 8000, 8000, api),
        (api, "tcp", 443, 443, "0.0.0.0/0"),
        (api, "tcp", 3306, 3306, database),
        (job, "tcp", 443, 443, "0.0.0.0/0"),
        (job, "tcp", 3306, 3306, database),
        (database, "icmp", 252, 86, "255.255.255.255/32"),  # CDK's marker for "none"
    }


def test_no_ipv6_rule_exists(either: Template) -> None:
    assert "CidrIpv6" not in json.dumps(either.to_json())


# Every IAM statement of a main stack, dev or prod: the execution roles of the API and the job
# (4 each: pull the image, log in to ECR, write logs, read the secret), the job's task role
# (read the raw bucket), the schedule's role (1: start the state machine), the state machine's
# role (8: list its own executions, deliver its logs, send traces, run the job's family in the
# cluster, follow and stop those tasks, tag them, pass the job's two roles, the ECS events rule
# of .sync) and the flow log's role (1). A change is a grant added or removed: review it,
# then count again.
IAM_STATEMENTS = 19

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


def test_both_containers_run_the_image_tag_from_the_environment_repository(
    dev: Template,
) -> None:
    tasks = resources(dev, "AWS::ECS::TaskDefinition")
    assert len(tasks) == 2, "the API's and the job's"
    images = set()
    for task in tasks.values():
        (definition,) = task["Properties"]["ContainerDefinitions"]
        images.add(json.dumps(definition["Image"]))
    assert len(images) == 1
    assert images.pop().endswith('"/wxhub-dev:0a1b2c3"]]}')


def test_an_image_digest_is_run_by_digest_in_both_containers() -> None:
    digest = "sha256:" + "ab" * 32
    _, main = synth("prod", imageTag=digest, certificateArn=CERTIFICATE_ARN)
    tasks = resources(Template.from_stack(main), "AWS::ECS::TaskDefinition")
    assert len(tasks) == 2
    for task in tasks.values():
        (definition,) = task["Properties"]["ContainerDefinitions"]
        assert json.dumps(definition["Image"]).endswith(f'"/wxhub-prod@{digest}"]]}}')


def test_both_containers_read_the_database_secret_attached_to_the_instance(
    dev: Template,
) -> None:
    attachment = only_logical_id(
        dev, "AWS::SecretsManager::SecretTargetAttachment", "DatabaseCredentialsAttachment"
    )
    tasks = resources(dev, "AWS::ECS::TaskDefinition")
    assert len(tasks) == 2, "the API's and the job's"
    for task in tasks.values():
        (definition,) = task["Properties"]["ContainerDefinitions"]
        assert {s["Name"]: s["ValueFrom"]["Fn::Join"][1] for s in definition["Secrets"]} == {
            "DB_HOST": [{"Ref": attachment}, ":host::"],
            "DB_PORT": [{"Ref": attachment}, ":port::"],
            "DB_USER": [{"Ref": attachment}, ":username::"],
            "DB_PASSWORD": [{"Ref": attachment}, ":password::"],
            "DB_NAME": [{"Ref": attachment}, ":dbname::"],
        }


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
    prod.resource_count_is("AWS::EC2::NatGateway", 2)
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
    text = json.dumps(dev.to_json())
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
