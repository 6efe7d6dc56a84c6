"""The load balancer's access logs: a private SSE-S3 bucket with a lifecycle, written only by
ELB's log delivery, and turned on in the load balancer's attributes."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk.assertions import Template

from tests.conftest import bare_stack, dev, only_logical_id, prod, resources
from wxhub_infra.access_logs import AccessLogs, elb_log_accounts
from wxhub_infra.settings import EnvironmentSettings


def build(settings: EnvironmentSettings) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    load_balancer = elbv2.ApplicationLoadBalancer(stack, "Alb", vpc=vpc, internet_facing=True)
    AccessLogs(stack, "AccessLogs", settings=settings).enable_on(load_balancer)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def logs() -> Template:
    return build(dev())


def bucket(template: Template) -> tuple[str, dict[str, Any]]:
    (logical_id,) = resources(template, "AWS::S3::Bucket")
    return logical_id, resources(template, "AWS::S3::Bucket")[logical_id]["Properties"]


def statements(template: Template) -> dict[str, dict[str, Any]]:
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    found = policy["Properties"]["PolicyDocument"]["Statement"]
    return {s.get("Sid", s["Effect"]): s for s in found}


def test_the_bucket_is_encrypted_with_s3_managed_keys_since_alb_logs_take_no_kms(
    logs: Template,
) -> None:
    _, props = bucket(logs)
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_the_bucket_blocks_public_access_and_refuses_plain_http(logs: Template) -> None:
    _, props = bucket(logs)
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    deny = statements(logs)["Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "s3:*"


@pytest.mark.parametrize(("settings", "days"), [(dev(), 14), (prod(), 90)])
def test_logs_expire_with_the_environments_log_retention(
    settings: EnvironmentSettings, days: int
) -> None:
    _, props = bucket(build(settings))
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == days
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_only_elb_log_delivery_may_write_and_only_under_this_accounts_prefix(
    logs: Template,
) -> None:
    bucket_id, _ = bucket(logs)
    found = statements(logs)
    for sid in ("ElbLogDelivery", "ElbLogDeliveryOlderRegions"):
        statement = found[sid]
        assert statement["Action"] == "s3:PutObject"
        parts = statement["Resource"]["Fn::Join"][1]
        assert parts == [
            {"Fn::GetAtt": [bucket_id, "Arn"]},
            "/api/AWSLogs/",
            {"Ref": "AWS::AccountId"},
            "/*",
        ]
    assert found["ElbLogDelivery"]["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"
    }
    older = found["ElbLogDeliveryOlderRegions"]["Principal"]["AWS"]["Fn::If"]
    assert older[1]["Fn::FindInMap"][1] == {"Ref": "AWS::Region"}


def test_the_region_map_names_elbs_account_in_older_regions_and_none_in_newer() -> None:
    accounts = elb_log_accounts()
    assert accounts["us-east-1"] == "arn:aws:iam::127311923021:root"
    assert accounts["eu-west-1"] == "arn:aws:iam::156460612806:root"
    assert accounts["il-central-1"] == "none"


def test_the_load_balancer_logs_to_the_bucket_once_the_policy_lets_it(logs: Template) -> None:
    bucket_id, _ = bucket(logs)
    alb_id = only_logical_id(logs, "AWS::ElasticLoadBalancingV2::LoadBalancer", "Alb")
    alb = resources(logs, "AWS::ElasticLoadBalancingV2::LoadBalancer")[alb_id]
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": bucket_id}
    assert attributes["access_logs.s3.prefix"] == "api"
    policy_id = only_logical_id(logs, "AWS::S3::BucketPolicy", "AccessLogsBucketPolicy")
    assert policy_id in alb["DependsOn"]
