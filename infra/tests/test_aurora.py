"""Aurora MySQL (db_engine "aurora-mysql"): the RDS instance's guarantees on a cluster, readers
behind a reader endpoint the API alone reads from, and auto scaling of the readers on CPU."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from tests.conftest import (
    CERTIFICATE_ARN,
    bare_stack,
    dev,
    egress_rules,
    ingress_rules,
    only_logical_id,
    prod,
    resources,
)
from tests.test_wxhub_stack import designed_ingress, synth
from wxhub_infra.aurora import AuroraDatabase
from wxhub_infra.settings import (
    EnvironmentSettings,
    SettingsError,
    settings_for,
    settings_from_context,
)

AURORA = {"db_engine": "aurora-mysql", "db_instance_class": "db.t4g.medium"}


def aurora_dev(**changes: Any) -> EnvironmentSettings:
    return dev(**{**AURORA, **changes})


def build(settings: EnvironmentSettings, *, peers: int = 0, alarms: bool = False) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    database = AuroraDatabase(
        stack,
        "Database",
        settings=settings,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
    )
    for number in range(peers):
        peer = ec2.SecurityGroup(stack, f"Peer{number}", vpc=vpc, allow_all_outbound=False)
        database.allow_from(peer, f"peer {number}")
    if alarms:
        database.watch(sns.Topic(stack, "Topic"))
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def provisioned() -> Template:
    return build(aurora_dev(db_min_readers=2, db_max_readers=5), peers=2, alarms=True)


@pytest.fixture(scope="module")
def serverless() -> Template:
    return build(
        aurora_dev(
            db_aurora_capacity="serverless-v2",
            db_serverless_min_acu=0.5,
            db_serverless_max_acu=8,
        ),
        alarms=True,
    )


def cluster(template: Template) -> dict[str, Any]:
    (found,) = resources(template, "AWS::RDS::DBCluster").values()
    return found


def instances(template: Template) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::RDS::DBInstance")


def readers(template: Template) -> list[dict[str, Any]]:
    return [props for key, props in instances(template).items() if "Reader" in key]


# --- the cluster ----------------------------------------------------------------------------------


def test_the_engine_is_aurora_mysql_3_upgraded_in_minor_versions(provisioned: Template) -> None:
    props = cluster(provisioned)["Properties"]
    assert props["Engine"] == "aurora-mysql"
    assert props["EngineVersion"].startswith("8.0.mysql_aurora.3.")
    assert props["DBClusterIdentifier"] == "wxhub-dev"
    for instance in instances(provisioned).values():
        assert instance["Properties"]["AutoMinorVersionUpgrade"] is True
        assert instance["Properties"]["PubliclyAccessible"] is False


def test_provisioned_makes_a_writer_and_the_minimum_of_readers_of_the_class(
    provisioned: Template,
) -> None:
    assert len(instances(provisioned)) == 3
    assert len(readers(provisioned)) == 2
    classes = {i["Properties"]["DBInstanceClass"] for i in instances(provisioned).values()}
    assert classes == {"db.t4g.medium"}
    assert "ServerlessV2ScalingConfiguration" not in cluster(provisioned)["Properties"]


def test_serverless_v2_scales_every_instance_between_the_acus_of_the_settings(
    serverless: Template,
) -> None:
    assert cluster(serverless)["Properties"]["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0.5,
        "MaxCapacity": 8,
    }
    classes = {i["Properties"]["DBInstanceClass"] for i in instances(serverless).values()}
    assert classes == {"db.serverless"}
    # one reader, the failover target, in tier 1: it scales with the writer
    (reader,) = readers(serverless)
    assert reader["Properties"]["PromotionTier"] == 1


def test_the_cluster_parameter_group_refuses_connections_without_tls(
    provisioned: Template,
) -> None:
    group = only_logical_id(
        provisioned, "AWS::RDS::DBClusterParameterGroup", "DatabaseClusterParameters"
    )
    props = resources(provisioned, "AWS::RDS::DBClusterParameterGroup")[group]["Properties"]
    assert props["Family"] == "aurora-mysql8.0"
    assert props["Parameters"]["require_secure_transport"] == "ON"
    assert props["Parameters"]["slow_query_log"] == "1"
    assert cluster(provisioned)["Properties"]["DBClusterParameterGroupName"] == {"Ref": group}


def test_every_instance_allows_load_data_local_infile(provisioned: Template) -> None:
    group = only_logical_id(provisioned, "AWS::RDS::DBParameterGroup", "DatabaseInstanceParameters")
    provisioned.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {"Family": "aurora-mysql8.0", "Parameters": Match.object_like({"local_infile": "1"})},
    )
    for instance in instances(provisioned).values():
        assert instance["Properties"]["DBParameterGroupName"] == {"Ref": group}


def test_storage_is_encrypted_and_removing_the_cluster_leaves_a_final_snapshot(
    provisioned: Template,
) -> None:
    found = cluster(provisioned)
    assert found["Properties"]["StorageEncrypted"] is True
    assert found["DeletionPolicy"] == "Snapshot"
    assert found["UpdateReplacePolicy"] == "Snapshot"


def test_dev_keeps_a_day_of_backups_and_prod_two_weeks_with_deletion_protection(
    provisioned: Template,
) -> None:
    dev_props = cluster(provisioned)["Properties"]
    prod_props = cluster(build(prod(**AURORA)))["Properties"]
    assert (dev_props["BackupRetentionPeriod"], dev_props["DeletionProtection"]) == (1, False)
    assert (prod_props["BackupRetentionPeriod"], prod_props["DeletionProtection"]) == (14, True)
    assert prod_props["PreferredBackupWindow"] == "03:00-03:30"


def test_error_and_slow_query_logs_go_to_log_groups_with_retention(provisioned: Template) -> None:
    assert cluster(provisioned)["Properties"]["EnableCloudwatchLogsExports"] == [
        "error",
        "slowquery",
    ]
    for kind in ("error", "slowquery"):
        provisioned.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/aws/rds/cluster/wxhub-dev/{kind}", "RetentionInDays": 14},
        )


def test_the_cluster_is_in_the_given_private_subnets(provisioned: Template) -> None:
    (subnet_group,) = resources(provisioned, "AWS::RDS::DBSubnetGroup").values()
    assert {s["Ref"] for s in subnet_group["Properties"]["SubnetIds"]} == {
        "VpcPrivateSubnet1Subnet536B997A",
        "VpcPrivateSubnet2Subnet3788AAA1",
    }


@pytest.mark.parametrize(
    ("construct", "username"),
    [
        ("Credentials", "wxhub_admin"),
        ("JobCredentials", "wxhub_job"),
        ("ApiCredentials", "wxhub_api"),
    ],
)
def test_each_user_s_secret_is_generated_and_attached_to_the_cluster(
    provisioned: Template, construct: str, username: str
) -> None:
    secret = only_logical_id(provisioned, "AWS::SecretsManager::Secret", f"Database{construct}")
    props = resources(provisioned, "AWS::SecretsManager::Secret")[secret]["Properties"]
    assert props["GenerateSecretString"]["SecretStringTemplate"] == (
        f'{{"username":"{username}","dbname":"wxhub"}}'
    )
    # attached: the secret holds the cluster (writer) endpoint as its host
    provisioned.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret}, "TargetType": "AWS::RDS::DBCluster"},
    )
    assert "resolve:secretsmanager" in str(cluster(provisioned)["Properties"]["MasterUserPassword"])


def test_rotation_is_off_unless_the_setting_turns_it_on(provisioned: Template) -> None:
    provisioned.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)
    build(aurora_dev(db_secret_rotation=True)).has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": "rate(30 days)"}},
    )


# --- who reaches it -------------------------------------------------------------------------------


def test_the_cluster_opens_mysql_to_exactly_the_groups_allowed_in(provisioned: Template) -> None:
    database = only_logical_id(provisioned, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    peers = [only_logical_id(provisioned, "AWS::EC2::SecurityGroup", f"Peer{n}") for n in (0, 1)]
    assert ingress_rules(provisioned) == {(database, "tcp", 3306, 3306, peer) for peer in peers}
    assert {rule for rule in egress_rules(provisioned) if rule[4] == database} == {
        (peer, "tcp", 3306, 3306, database) for peer in peers
    }
    assert cluster(provisioned)["Properties"]["VpcSecurityGroupIds"] == [
        {"Fn::GetAtt": [database, "GroupId"]}
    ]


def test_the_cluster_never_connects_out(provisioned: Template) -> None:
    database = only_logical_id(provisioned, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup")
    own = {rule for rule in egress_rules(provisioned) if rule[0] == database}
    assert {rule[4] for rule in own} == {"255.255.255.255/32"}  # CDK's "no outbound" marker


# --- reader auto scaling --------------------------------------------------------------------------


def test_readers_scale_between_the_settings_on_their_average_cpu(provisioned: Template) -> None:
    (target_id, target), *others = resources(
        provisioned, "AWS::ApplicationAutoScaling::ScalableTarget"
    ).items()
    assert not others
    props = target["Properties"]
    assert (props["MinCapacity"], props["MaxCapacity"]) == (2, 5)
    assert props["ServiceNamespace"] == "rds"
    assert props["ScalableDimension"] == "rds:cluster:ReadReplicaCount"
    database_cluster = only_logical_id(provisioned, "AWS::RDS::DBCluster", "DatabaseCluster")
    assert props["ResourceId"] == {"Fn::Join": ["", ["cluster:", {"Ref": database_cluster}]]}
    # registered once the template's instances exist
    assert {database_cluster, *instances(provisioned)} <= set(target["DependsOn"])

    (policy,) = resources(provisioned, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    assert policy["Properties"]["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "RDSReaderAverageCPUUtilization"
    }
    assert tracking["TargetValue"] == 60


def test_with_as_many_readers_as_the_ceiling_nothing_scales() -> None:
    template = build(aurora_dev(db_min_readers=2, db_max_readers=2))
    assert len(readers(template)) == 2
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)


# --- alarms ---------------------------------------------------------------------------------------


def alarm_metrics(template: Template) -> dict[str, dict[str, Any]]:
    return {
        props["Properties"]["MetricName"]: props["Properties"]
        for props in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def test_the_writer_s_cpu_and_the_readers_lag_raise_alarms_to_the_topic(
    provisioned: Template,
) -> None:
    alarms = alarm_metrics(provisioned)
    assert set(alarms) == {"CPUUtilization", "AuroraReplicaLagMaximum"}
    topic = only_logical_id(provisioned, "AWS::SNS::Topic", "Topic")
    for props in alarms.values():
        assert {"Name": "Role", "Value": "WRITER"} in props["Dimensions"]
        assert {"Name": "DBClusterIdentifier", "Value": "wxhub-dev"} in props["Dimensions"]
        assert props["AlarmActions"] == [{"Ref": topic}]
        assert props["OKActions"] == [{"Ref": topic}]
    assert alarms["CPUUtilization"]["Threshold"] == 80
    assert alarms["AuroraReplicaLagMaximum"]["Threshold"] == 60_000


def test_serverless_v2_also_alarms_on_a_writer_at_its_capacity_ceiling(
    serverless: Template,
) -> None:
    assert alarm_metrics(serverless)["ACUUtilization"]["Threshold"] == 90


# --- the whole app on Aurora ----------------------------------------------------------------------


AURORA_CONTEXT = {
    "imageTag": "0a1b2c3",
    "certificateArn": CERTIFICATE_ARN,
    "dbEngine": "aurora-mysql",
    "dbInstanceClass": "db.t4g.medium",
    "dbMaxReaders": "3",
}


@pytest.fixture(scope="module")
def aurora_app() -> Template:
    _, main = synth("dev", **AURORA_CONTEXT)
    return Template.from_stack(main)


def environments(template: Template) -> dict[str, dict[str, Any]]:
    """Container name -> its plain environment variables."""
    return {
        container["Name"]: {v["Name"]: v["Value"] for v in container.get("Environment", [])}
        for task in resources(template, "AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    }


def secret_variables(template: Template, container: str) -> set[str]:
    for task in resources(template, "AWS::ECS::TaskDefinition").values():
        for found in task["Properties"]["ContainerDefinitions"]:
            if found["Name"] == container:
                return {secret["Name"] for secret in found.get("Secrets", [])}
    raise AssertionError(f"no container {container}")


def test_the_app_on_aurora_has_a_cluster_and_no_rds_instance_of_its_own(
    aurora_app: Template,
) -> None:
    aurora_app.resource_count_is("AWS::RDS::DBCluster", 1)
    for instance in instances(aurora_app).values():
        assert instance["Properties"]["Engine"] == "aurora-mysql"
    aurora_app.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 3)  # 2 API, 1 DB


def test_the_api_reads_from_the_reader_endpoint(aurora_app: Template) -> None:
    database_cluster = only_logical_id(aurora_app, "AWS::RDS::DBCluster", "DatabaseCluster")
    api = environments(aurora_app)["api"]
    assert api["DB_READ_HOST"] == {"Fn::GetAtt": [database_cluster, "ReadEndpoint.Address"]}
    # with the user, password and port of its own secret, whose host is the writer
    assert {"DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} <= secret_variables(
        aurora_app, "api"
    )


def test_the_job_and_the_migration_write_through_the_writer_alone(aurora_app: Template) -> None:
    found = environments(aurora_app)
    assert set(found) == {"api", "job", "migrate"}
    for container in ("job", "migrate"):
        assert "DB_READ_HOST" not in found[container]
        assert "DB_HOST" in secret_variables(aurora_app, container)


def test_on_rds_mysql_no_container_has_a_read_host() -> None:
    _, main = synth("dev", imageTag="0a1b2c3", certificateArn=CERTIFICATE_ARN)
    template = Template.from_stack(main)
    assert all("DB_READ_HOST" not in env for env in environments(template).values())
    template.resource_count_is("AWS::RDS::DBCluster", 0)


def test_on_aurora_the_inbound_rules_are_the_same_as_on_rds(aurora_app: Template) -> None:
    assert ingress_rules(aurora_app) == designed_ingress(aurora_app)


def test_on_aurora_the_cluster_alarms_replace_the_instance_ones(aurora_app: Template) -> None:
    metrics = {
        props["Properties"].get("MetricName")
        for props in resources(aurora_app, "AWS::CloudWatch::Alarm").values()
    }
    assert {"CPUUtilization", "AuroraReplicaLagMaximum"} <= metrics
    assert "FreeStorageSpace" not in metrics  # Aurora's storage grows by itself


# --- settings -------------------------------------------------------------------------------------


def test_rds_mysql_stays_the_default_in_both_environments() -> None:
    for env in ("dev", "prod"):
        assert settings_for(env).db_engine == "rds-mysql"
        assert not settings_for(env).uses_aurora


def test_context_chooses_aurora_serverless_and_its_readers() -> None:
    settings = settings_from_context(
        {
            "env": "prod",
            "dbEngine": "aurora-mysql",
            "dbAuroraCapacity": "serverless-v2",
            "dbServerlessMinAcu": "1.5",
            "dbServerlessMaxAcu": 16,
            "dbMinReaders": "2",
            "dbMaxReaders": "6",
        }
    )
    assert settings.uses_aurora
    assert settings.scales_readers
    assert (settings.db_serverless_min_acu, settings.db_serverless_max_acu) == (1.5, 16)
    assert (settings.db_min_readers, settings.db_max_readers) == (2, 6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"db_engine": "postgres"}, "db_engine is 'postgres'; allowed: rds-mysql, aurora-mysql"),
        ({**AURORA, "db_aurora_capacity": "v1"}, "db_aurora_capacity is 'v1'"),
        ({**AURORA, "db_instance_class": "db.t3.micro"}, "no class smaller than db.t4g.medium"),
        ({**AURORA, "db_min_readers": 0}, "1 <= db_min_readers <= db_max_readers <= 15"),
        ({**AURORA, "db_min_readers": 3, "db_max_readers": 2}, "db_min_readers is 3"),
        ({**AURORA, "db_max_readers": 16}, "db_max_readers 16"),
        ({**AURORA, "db_reader_cpu_target_percent": 95}, "allowed 10..90"),
        (
            {**AURORA, "db_aurora_capacity": "serverless-v2", "db_serverless_min_acu": 0},
            "a minimum of 0 would pause the database",
        ),
        (
            {**AURORA, "db_aurora_capacity": "serverless-v2", "db_serverless_max_acu": 2.25},
            "in steps of 0.5",
        ),
        (
            {
                **AURORA,
                "db_aurora_capacity": "serverless-v2",
                "db_serverless_min_acu": 8,
                "db_serverless_max_acu": 4,
            },
            "min <= max",
        ),
        ({"db_max_readers": 3}, "db_max_readers: Aurora settings, but db_engine is 'rds-mysql'"),
    ],
)
def test_aurora_settings_that_cannot_work_are_rejected_with_what_is_allowed(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        dataclasses.replace(settings_for("dev"), **changes)


def test_serverless_v2_takes_any_class_setting_since_it_uses_none() -> None:
    settings = dataclasses.replace(
        settings_for("dev"), db_engine="aurora-mysql", db_aurora_capacity="serverless-v2"
    )
    assert settings.db_instance_class == "db.t3.micro"  # the RDS default, unused
