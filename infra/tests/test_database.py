"""RDS MySQL 8.4: encrypted, backed up, isolated, credentials in Secrets Manager."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template

from tests.conftest import (
    bare_stack,
    dev,
    egress_rules,
    ingress_rules,
    only_logical_id,
    prod,
    resources,
)
from wxhub_infra.database import Database
from wxhub_infra.settings import EnvironmentSettings


def build(settings: EnvironmentSettings, *, peers: int = 0) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    database = Database(
        stack,
        "Database",
        settings=settings,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
    )
    for number in range(peers):
        peer = ec2.SecurityGroup(stack, f"Peer{number}", vpc=vpc, allow_all_outbound=False)
        database.allow_from(peer, f"peer {number}")
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def dev_db() -> Template:
    return build(dev(), peers=2)


@pytest.fixture(scope="module")
def prod_db() -> Template:
    return build(prod())


def instance(template: Template) -> dict[str, Any]:
    (found,) = resources(template, "AWS::RDS::DBInstance").values()
    return found


def test_the_engine_is_mysql_8_4_on_the_instance_class_of_the_settings(dev_db: Template) -> None:
    props = instance(dev_db)["Properties"]
    assert props["Engine"] == "mysql"
    assert props["EngineVersion"].startswith("8.4.")
    assert props["DBInstanceClass"] == "db.t3.micro"
    assert props["AutoMinorVersionUpgrade"] is True


def test_another_instance_class_is_a_setting() -> None:
    template = build(dev(db_instance_class="db.t4g.small"))
    assert instance(template)["Properties"]["DBInstanceClass"] == "db.t4g.small"


def test_the_parameter_group_allows_load_data_local_infile(dev_db: Template) -> None:
    dev_db.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {"Family": "mysql8.4", "Parameters": Match.object_like({"local_infile": "1"})},
    )
    group = only_logical_id(dev_db, "AWS::RDS::DBParameterGroup", "DatabaseParameters")
    assert instance(dev_db)["Properties"]["DBParameterGroupName"] == {"Ref": group}


def test_the_parameter_group_refuses_connections_without_tls(dev_db: Template) -> None:
    dev_db.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {"Parameters": Match.object_like({"require_secure_transport": "1"})},
    )


@pytest.mark.parametrize(("construct", "username"), [("Job", "wxhub_job"), ("Api", "wxhub_api")])
def test_the_job_and_the_api_users_have_generated_secrets_of_their_own(
    dev_db: Template, construct: str, username: str
) -> None:
    secret = only_logical_id(
        dev_db, "AWS::SecretsManager::Secret", f"Database{construct}Credentials"
    )
    props = resources(dev_db, "AWS::SecretsManager::Secret")[secret]["Properties"]
    assert props["GenerateSecretString"]["GenerateStringKey"] == "password"
    assert props["GenerateSecretString"]["SecretStringTemplate"] == (
        f'{{"username":"{username}","dbname":"wxhub"}}'
    )
    # attached, so the secret also holds the instance's host and port, as the master's does
    dev_db.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret}, "TargetType": "AWS::RDS::DBInstance"},
    )


def test_storage_is_encrypted_gp3_and_grows_by_itself(dev_db: Template) -> None:
    props = instance(dev_db)["Properties"]
    assert props["StorageEncrypted"] is True
    assert props["StorageType"] == "gp3"
    assert props["AllocatedStorage"] == "20"
    assert props["MaxAllocatedStorage"] == 100


def test_dev_keeps_one_day_of_backups_single_az_without_deletion_protection(
    dev_db: Template,
) -> None:
    props = instance(dev_db)["Properties"]
    assert props["BackupRetentionPeriod"] == 1
    assert props["MultiAZ"] is False
    assert props["DeletionProtection"] is False


def test_prod_keeps_two_weeks_of_backups_multi_az_with_deletion_protection(
    prod_db: Template,
) -> None:
    props = instance(prod_db)["Properties"]
    assert props["BackupRetentionPeriod"] == 14
    assert props["MultiAZ"] is True
    assert props["DeletionProtection"] is True


def test_removing_the_database_leaves_a_final_snapshot(dev_db: Template) -> None:
    db = instance(dev_db)
    assert db["DeletionPolicy"] == "Snapshot"
    assert db["UpdateReplacePolicy"] == "Snapshot"


def test_the_database_is_private_in_the_given_subnets(dev_db: Template) -> None:
    assert instance(dev_db)["Properties"]["PubliclyAccessible"] is False
    (subnet_group,) = resources(dev_db, "AWS::RDS::DBSubnetGroup").values()
    subnets = subnet_group["Properties"]["SubnetIds"]
    assert {s["Ref"] for s in subnets} == {
        "VpcPrivateSubnet1Subnet536B997A",
        "VpcPrivateSubnet2Subnet3788AAA1",
    }


def test_credentials_are_generated_into_secrets_manager_with_the_database_name(
    dev_db: Template,
) -> None:
    dev_db.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": Match.object_like(
                {
                    "GenerateStringKey": "password",
                    "SecretStringTemplate": '{"username":"wxhub_admin","dbname":"wxhub"}',
                }
            )
        },
    )
    secret = only_logical_id(dev_db, "AWS::SecretsManager::Secret", "DatabaseCredentials")
    dev_db.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret}, "TargetType": "AWS::RDS::DBInstance"},
    )
    props = instance(dev_db)["Properties"]
    assert props["DBName"] == "wxhub"
    assert "MasterUserPassword" in props  # a dynamic reference to the secret, not a value
    assert "resolve:secretsmanager" in str(props["MasterUserPassword"])


def test_rotation_is_off_unless_the_setting_turns_it_on(dev_db: Template) -> None:
    dev_db.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)
    rotated = build(dev(db_secret_rotation=True))
    rotated.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": "rate(30 days)"}},
    )


def test_the_database_opens_mysql_to_exactly_the_groups_allowed_in(dev_db: Template) -> None:
    database = only_logical_id(dev_db, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    peers = [only_logical_id(dev_db, "AWS::EC2::SecurityGroup", f"Peer{n}") for n in (0, 1)]
    assert ingress_rules(dev_db) == {(database, "tcp", 3306, 3306, peer) for peer in peers}
    # and each peer may open connections to it, on that port only
    assert {rule for rule in egress_rules(dev_db) if rule[4] == database} == {
        (peer, "tcp", 3306, 3306, database) for peer in peers
    }


def test_the_database_group_has_no_inbound_rule_of_its_own() -> None:
    template = build(dev())
    # The group exists (else "no inbound rule" would hold of nothing).
    only_logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    assert ingress_rules(template) == set()


def test_the_database_never_connects_out(dev_db: Template) -> None:
    database = only_logical_id(dev_db, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    own = {rule for rule in egress_rules(dev_db) if rule[0] == database}
    assert {rule[4] for rule in own} == {"255.255.255.255/32"}  # CDK's "no outbound" marker


def test_error_and_slow_query_logs_go_to_log_groups_with_retention(dev_db: Template) -> None:
    assert instance(dev_db)["Properties"]["EnableCloudwatchLogsExports"] == ["error", "slowquery"]
    for kind in ("error", "slowquery"):
        dev_db.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/aws/rds/instance/wxhub-dev/{kind}", "RetentionInDays": 14},
        )


def test_with_rotation_the_rotation_function_is_the_only_other_source_let_in() -> None:
    template = build(dev(db_secret_rotation=True), peers=1)
    database = only_logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    sources = {rule[4] for rule in ingress_rules(template) if rule[0] == database}
    rotation = [s for s in sources if "Rotation" in s]
    assert len(sources) == 2
    assert len(rotation) == 1
    (rotation_rule,) = [rule for rule in ingress_rules(template) if rule[4] == rotation[0]]
    instance_port = (
        f"<{only_logical_id(template, 'AWS::RDS::DBInstance', 'Database')}.Endpoint.Port>"
    )
    assert rotation_rule[1:4] == ("tcp", instance_port, instance_port)
