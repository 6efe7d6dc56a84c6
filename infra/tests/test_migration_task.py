"""The migration task: `wxhub migrate`, the only task with the master user's secret."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from tests.conftest import bare_stack, dev, egress_rules, ingress_rules, only_logical_id, resources
from wxhub_infra.migration_task import MigrationTask


@pytest.fixture(scope="module")
def template() -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    MigrationTask(
        stack,
        "Migration",
        settings=dev(),
        vpc=vpc,
        image=ecs.ContainerImage.from_registry("wxhub:test"),
        master_secret=secretsmanager.Secret(stack, "MasterSecret"),
        job_secret=secretsmanager.Secret(stack, "JobSecret"),
        api_secret=secretsmanager.Secret(stack, "ApiSecret"),
        log_group=logs.LogGroup(stack, "JobLogs"),
    )
    return Template.from_stack(stack)


def container(template: Template) -> dict[str, Any]:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return dict(definition)


def test_the_task_runs_wxhub_migrate_in_its_own_family(template: Template) -> None:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    assert task["Properties"]["Family"] == "wxhub-dev-migrate"
    assert container(template)["Command"] == ["wxhub", "migrate"]
    assert container(template)["Name"] == "migrate"
    assert container(template)["ReadonlyRootFilesystem"] is True


def test_it_logs_in_as_the_master_and_keeps_the_job_and_api_users(template: Template) -> None:
    master, job, api = (
        only_logical_id(template, "AWS::SecretsManager::Secret", name)
        for name in ("MasterSecret", "JobSecret", "ApiSecret")
    )
    secrets = {s["Name"]: s["ValueFrom"]["Fn::Join"][1] for s in container(template)["Secrets"]}
    assert secrets == {
        "DB_HOST": [{"Ref": master}, ":host::"],
        "DB_PORT": [{"Ref": master}, ":port::"],
        "DB_USER": [{"Ref": master}, ":username::"],
        "DB_PASSWORD": [{"Ref": master}, ":password::"],
        "DB_NAME": [{"Ref": master}, ":dbname::"],
        "WXHUB_DB_JOB_USER": [{"Ref": job}, ":username::"],
        "WXHUB_DB_JOB_PASSWORD": [{"Ref": job}, ":password::"],
        "WXHUB_DB_API_USER": [{"Ref": api}, ":username::"],
        "WXHUB_DB_API_PASSWORD": [{"Ref": api}, ":password::"],
    }
    # no password in plain text anywhere in the definition
    assert "PASSWORD" not in str(container(template).get("Environment", []))


def test_nothing_connects_to_it_and_it_reaches_only_https(template: Template) -> None:
    group = only_logical_id(template, "AWS::EC2::SecurityGroup", "MigrationSecurityGroup")
    assert ingress_rules(template) == set()
    assert egress_rules(template) == {(group, "tcp", 443, 443, "0.0.0.0/0")}


def test_it_is_not_scheduled(template: Template) -> None:
    template.resource_count_is("AWS::Events::Rule", 0)
