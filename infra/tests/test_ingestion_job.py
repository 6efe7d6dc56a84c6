"""The scheduled ingestion job and the raw bucket it reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from tests.conftest import (
    bare_stack,
    dev,
    egress_rules,
    ingress_rules,
    only_logical_id,
    resources,
)
from wxhub_infra.ingestion_job import IngestionJob, job_command
from wxhub_infra.settings import EnvironmentSettings


def build(settings: EnvironmentSettings) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    IngestionJob(
        stack,
        "Job",
        settings=settings,
        vpc=vpc,
        app_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        image=ecs.ContainerImage.from_registry("wxhub:test"),
        db_secret=secretsmanager.Secret(stack, "DbSecret"),
        log_group=logs.LogGroup(stack, "JobLogs"),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def job() -> Template:
    return build(dev())


@pytest.fixture(scope="module")
def sharded_job() -> Template:
    return build(dev(job_shards=3, job_schedule="rate(1 hour)"))


def bucket_command(template: Template, *args: str) -> list[Any]:
    bucket = only_logical_id(template, "AWS::S3::Bucket", "JobRawBucket")
    url = {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/"]]}
    return ["python", "-m", "wxhub.ingestion", *args, url]


def schedule(template: Template) -> Any:
    (rule,) = resources(template, "AWS::Events::Rule").values()
    return rule["Properties"]


def container(template: Template) -> Any:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    (found,) = task["Properties"]["ContainerDefinitions"]
    return found


def test_the_job_command_reads_the_whole_bucket_or_one_shard_of_it() -> None:
    assert job_command("raw") == ["python", "-m", "wxhub.ingestion", "s3://raw/"]
    assert job_command("raw", 2, 3) == [
        "python",
        "-m",
        "wxhub.ingestion",
        "--shard",
        "2/3",
        "s3://raw/",
    ]


def test_the_raw_bucket_is_encrypted_versioned_and_blocks_public_access(job: Template) -> None:
    (bucket,) = resources(job, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms"}
    assert encryption["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"


def test_the_raw_bucket_refuses_requests_without_tls(job: Template) -> None:
    (policy,) = resources(job, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_replaced_file_versions_expire_after_90_days(job: Template) -> None:
    (bucket,) = resources(job, "AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireReplacedVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }


def test_the_schedule_is_the_nightly_cron_of_the_settings(job: Template) -> None:
    assert schedule(job)["ScheduleExpression"] == "cron(0 1 * * ? *)"


def test_the_schedule_runs_one_private_fargate_task_of_the_job(job: Template) -> None:
    (target,) = schedule(job)["Targets"]
    ecs_parameters = target["EcsParameters"]
    assert ecs_parameters["LaunchType"] == "FARGATE"
    assert ecs_parameters["TaskCount"] == 1
    assert ecs_parameters["TaskDefinitionArn"] == {
        "Ref": only_logical_id(job, "AWS::ECS::TaskDefinition", "JobTaskDefinition")
    }
    network = ecs_parameters["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["SecurityGroups"] == [
        {
            "Fn::GetAtt": [
                only_logical_id(job, "AWS::EC2::SecurityGroup", "JobSecurityGroup"),
                "GroupId",
            ]
        }
    ]
    assert "ContainerOverrides" not in target.get("Input", "")


def test_the_job_container_loads_the_raw_bucket(job: Template) -> None:
    definition = container(job)
    assert definition["Name"] == "job"
    assert definition["Command"] == bucket_command(job)


def test_another_schedule_such_as_hourly_is_a_setting(sharded_job: Template) -> None:
    assert schedule(sharded_job)["ScheduleExpression"] == "rate(1 hour)"


def test_with_three_shards_the_schedule_starts_one_task_per_shard(sharded_job: Template) -> None:
    bucket = only_logical_id(sharded_job, "AWS::S3::Bucket", "JobRawBucket")
    targets = schedule(sharded_job)["Targets"]
    assert len(targets) == 3
    overrides = [container_overrides(target) for target in targets]
    assert overrides == [
        [
            {
                "name": "job",
                "command": [
                    "python",
                    "-m",
                    "wxhub.ingestion",
                    "--shard",
                    f"{shard}/3",
                    f"s3://<{bucket}>/",
                ],
            }
        ]
        for shard in (1, 2, 3)
    ]
    assert all(target["EcsParameters"]["TaskCount"] == 1 for target in targets)


def container_overrides(target: dict[str, Any]) -> Any:
    """The overrides of an EcsTask target: JSON text joined around the bucket's Ref, which
    is written here as ``<LogicalId>``."""
    parts = target["Input"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)
    return json.loads(text)["containerOverrides"]


def test_the_job_reads_the_secret_as_db_variables(job: Template) -> None:
    secret = only_logical_id(job, "AWS::SecretsManager::Secret", "DbSecret")
    injected = {s["Name"]: s["ValueFrom"] for s in container(job)["Secrets"]}
    assert set(injected) == {"DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"}
    assert injected["DB_PASSWORD"] == {"Fn::Join": ["", [{"Ref": secret}, ":password::"]]}


def test_the_job_logs_json_with_emf_metrics_read_only_with_a_writable_tmp(job: Template) -> None:
    definition = container(job)
    environment = {e["Name"]: e["Value"] for e in definition["Environment"]}
    assert environment == {
        "WXHUB_LOG_FORMAT": "json",
        "WXHUB_METRICS": "emf",
        "WXHUB_METRICS_NAMESPACE": "wxhub/dev",
    }
    assert definition["LogConfiguration"]["Options"]["awslogs-group"] == {
        "Ref": only_logical_id(job, "AWS::Logs::LogGroup", "JobLogs")
    }
    assert definition["ReadonlyRootFilesystem"] is True
    assert definition["MountPoints"][0]["ContainerPath"] == "/tmp"


def test_the_task_family_is_stable_for_alarms_and_the_deploy_flow(job: Template) -> None:
    job.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"Family": "wxhub-dev-job", "Cpu": "512", "Memory": "1024"}
    )


def test_the_task_role_may_only_read_the_raw_bucket(job: Template) -> None:
    task_role = only_logical_id(job, "AWS::IAM::Role", "JobTaskDefinitionTaskRole")
    bucket = only_logical_id(job, "AWS::S3::Bucket", "JobRawBucket")
    statements = [
        statement
        for policy in resources(job, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [{"Ref": task_role}]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Action": ["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
            "Effect": "Allow",
            "Resource": [
                {"Fn::GetAtt": [bucket, "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
            ],
        }
    ]


def test_nothing_may_connect_to_the_job(job: Template) -> None:
    # The job's group exists (else "no inbound rule" would hold of nothing).
    only_logical_id(job, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    assert ingress_rules(job) == set()


def test_the_job_reaches_out_on_https_only_until_the_database_lets_it_in(job: Template) -> None:
    group = only_logical_id(job, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    assert {rule for rule in egress_rules(job) if rule[0] == group} == {
        (group, "tcp", 443, 443, "0.0.0.0/0")
    }
