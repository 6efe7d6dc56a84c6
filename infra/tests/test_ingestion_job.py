"""The ingestion job's task definition and the raw bucket it reads (its schedule and steps:
test_orchestration.py)."""

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
from wxhub_infra.ingestion_job import IngestionJob, job_command, selection_environment
from wxhub_infra.settings import EnvironmentSettings

BY_STATION = "s3://noaa-ghcn-pds/csv.gz/by_station/"
STATION_LIST = "s3://noaa-ghcn-pds/ghcnd-stations.txt"
THIS_YEAR = "s3://noaa-ghcn-pds/csv.gz/by_year/2026.csv.gz"


def build(settings: EnvironmentSettings) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    IngestionJob(
        stack,
        "Job",
        settings=settings,
        vpc=vpc,
        image=ecs.ContainerImage.from_registry("wxhub:test"),
        db_secret=secretsmanager.Secret(stack, "DbSecret"),
        log_group=logs.LogGroup(stack, "JobLogs"),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def job() -> Template:
    return build(dev())


@pytest.fixture(scope="module")
def ghcn_job() -> Template:
    """The raw bucket and an Illinois and Indiana region of NOAA's bucket."""
    return build(
        dev(
            ghcn_sources=(BY_STATION, STATION_LIST),
            job_stations=("USC0011*", "USW00094846"),
            job_country=("US",),
            job_state=("IL", "IN"),
            job_bbox=(-91.6, 36.9, -84.7, 42.6),
        )
    )


@pytest.fixture(scope="module")
def noaa_only_job() -> Template:
    return build(dev(job_reads_raw_bucket=False, ghcn_sources=(THIS_YEAR,)))


def bucket_command(template: Template, *args: str) -> list[Any]:
    bucket = only_logical_id(template, "AWS::S3::Bucket", "JobRawBucket")
    url = {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/"]]}
    return ["python", "-m", "wxhub.ingestion", *args, url]


def container(template: Template) -> Any:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    (found,) = task["Properties"]["ContainerDefinitions"]
    return found


def test_the_job_command_is_a_whole_run_of_its_sources() -> None:
    assert job_command(["s3://raw/", BY_STATION]) == [
        "python",
        "-m",
        "wxhub.ingestion",
        "s3://raw/",
        BY_STATION,
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


def test_the_job_schedules_nothing_itself(job: Template) -> None:
    # The state machine's rule starts the runs (orchestration.py): no second way in.
    assert resources(job, "AWS::Events::Rule") == {}


def test_the_job_container_loads_the_raw_bucket(job: Template) -> None:
    definition = container(job)
    assert definition["Name"] == "job"
    assert definition["Command"] == bucket_command(job)


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


def task_role_statements(template: Template) -> list[dict[str, Any]]:
    """The statements of the job's task role, from the one policy CDK attaches to it."""
    task_role = only_logical_id(template, "AWS::IAM::Role", "JobTaskDefinitionTaskRole")
    policies = [
        policy
        for policy in resources(template, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [{"Ref": task_role}]
    ]
    assert len(policies) == 1, policies
    return list(policies[0]["Properties"]["PolicyDocument"]["Statement"])


def raw_bucket_read(template: Template) -> dict[str, Any]:
    """CDK's grant_read of the raw bucket, as synthesized."""
    bucket = only_logical_id(template, "AWS::S3::Bucket", "JobRawBucket")
    return {
        "Action": ["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
        "Effect": "Allow",
        "Resource": [
            {"Fn::GetAtt": [bucket, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
        ],
    }


NOAA_READ = [
    {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": "arn:aws:s3:::noaa-ghcn-pds"},
    {"Action": "s3:GetObject", "Effect": "Allow", "Resource": "arn:aws:s3:::noaa-ghcn-pds/*"},
]


def test_the_task_role_may_only_read_the_raw_bucket(job: Template) -> None:
    assert task_role_statements(job) == [raw_bucket_read(job)]


def test_without_ghcn_sources_nothing_names_noaas_bucket(job: Template) -> None:
    assert "noaa-ghcn-pds" not in json.dumps(job.to_json())


def test_ghcn_sources_let_the_task_role_list_noaas_bucket_and_get_its_objects_only(
    ghcn_job: Template,
) -> None:
    assert task_role_statements(ghcn_job) == [raw_bucket_read(ghcn_job), *NOAA_READ]


def test_a_job_of_noaa_only_may_read_noaa_and_not_the_raw_bucket(noaa_only_job: Template) -> None:
    assert task_role_statements(noaa_only_job) == NOAA_READ


def test_ghcn_sources_follow_the_raw_bucket_on_the_command_line(ghcn_job: Template) -> None:
    (raw,) = bucket_command(ghcn_job)[3:]
    assert container(ghcn_job)["Command"] == [
        "python",
        "-m",
        "wxhub.ingestion",
        raw,
        BY_STATION,
        STATION_LIST,
    ]


def test_a_job_of_noaa_only_names_noaas_object_alone(noaa_only_job: Template) -> None:
    assert container(noaa_only_job)["Command"] == ["python", "-m", "wxhub.ingestion", THIS_YEAR]


def test_the_selection_reaches_the_task_as_the_variables_wxhub_run_reads(
    ghcn_job: Template,
) -> None:
    environment = {e["Name"]: e["Value"] for e in container(ghcn_job)["Environment"]}
    assert environment == {
        "WXHUB_LOG_FORMAT": "json",
        "WXHUB_METRICS": "emf",
        "WXHUB_METRICS_NAMESPACE": "wxhub/dev",
        "WXHUB_STATIONS": "USC0011*,USW00094846",
        "WXHUB_COUNTRY": "US",
        "WXHUB_STATE": "IL,IN",
        "WXHUB_BBOX": "-91.6,36.9,-84.7,42.6",
    }


def test_a_box_of_whole_degrees_is_written_as_numbers_wxhub_reads() -> None:
    assert selection_environment(dev(job_bbox=(-92, 36, -84, 43))) == {
        "WXHUB_BBOX": "-92.0,36.0,-84.0,43.0"
    }


def test_nothing_may_connect_to_the_job(job: Template) -> None:
    # The job's group exists (else "no inbound rule" would hold of nothing).
    only_logical_id(job, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    assert ingress_rules(job) == set()


def test_the_job_reaches_out_on_https_only_until_the_database_lets_it_in(job: Template) -> None:
    group = only_logical_id(job, "AWS::EC2::SecurityGroup", "JobSecurityGroup")
    assert {rule for rule in egress_rules(job) if rule[0] == group} == {
        (group, "tcp", 443, 443, "0.0.0.0/0")
    }
