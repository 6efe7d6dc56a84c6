"""The API: Fargate behind an ALB with HTTPS, a redirect, health checks, scaling and rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
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
from wxhub_infra.api_service import ApiService
from wxhub_infra.settings import EnvironmentSettings


def build(settings: EnvironmentSettings) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    ApiService(
        stack,
        "Api",
        settings=settings,
        vpc=vpc,
        public_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        app_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        image=ecs.ContainerImage.from_registry("wxhub:test"),
        db_secret=secretsmanager.Secret(stack, "DbSecret"),
        log_group=logs.LogGroup(stack, "ApiLogs"),
        certificate_arn=CERTIFICATE_ARN,
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def api() -> Template:
    return build(dev())


@pytest.fixture(scope="module")
def prod_api() -> Template:
    return build(prod())


def container(template: Template) -> Any:
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    (found,) = task["Properties"]["ContainerDefinitions"]
    return found


def listener(template: Template, port: int) -> Any:
    (found,) = [
        listener["Properties"]
        for listener in resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
        if listener["Properties"]["Port"] == port
    ]
    return found


def groups(template: Template) -> tuple[str, str]:
    return (
        only_logical_id(template, "AWS::EC2::SecurityGroup", "ApiLoadBalancerSecurityGroup"),
        only_logical_id(template, "AWS::EC2::SecurityGroup", "ApiServiceSecurityGroup"),
    )


def test_the_load_balancer_is_internet_facing_in_the_public_subnets(api: Template) -> None:
    api.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "Subnets": [
                {"Ref": "VpcPublicSubnet1Subnet5C2D37C4"},
                {"Ref": "VpcPublicSubnet2Subnet691E08A3"},
            ],
        },
    )


def test_the_load_balancer_drops_invalid_headers_and_is_protected_in_prod(
    api: Template, prod_api: Template
) -> None:
    def attributes(template: Template) -> dict[str, str]:
        (alb,) = resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
        return {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}

    assert attributes(api)["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes(api)["deletion_protection.enabled"] == "false"
    assert attributes(prod_api)["deletion_protection.enabled"] == "true"


def test_https_on_443_uses_the_certificate_and_a_tls_1_2_or_later_policy(api: Template) -> None:
    https = listener(api, 443)
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": CERTIFICATE_ARN}]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    (action,) = https["DefaultActions"]
    assert action["Type"] == "forward"


def test_http_listener_redirects_to_https(api: Template) -> None:
    http = listener(api, 80)
    assert http["Protocol"] == "HTTP"
    assert http["DefaultActions"] == [
        {
            "Type": "redirect",
            "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
        }
    ]


def test_targets_are_checked_on_healthz_on_the_container_port(api: Template) -> None:
    api.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        Match.object_like(
            {
                "Port": 8000,
                "Protocol": "HTTP",
                "TargetType": "ip",
                "HealthCheckPath": "/healthz",
                "Matcher": {"HttpCode": "200"},
            }
        ),
    )


def test_the_load_balancer_takes_443_and_80_from_anywhere_and_nothing_else(api: Template) -> None:
    alb, service = groups(api)
    assert {rule for rule in ingress_rules(api) if rule[0] == alb} == {
        (alb, "tcp", 443, 443, "0.0.0.0/0"),
        (alb, "tcp", 80, 80, "0.0.0.0/0"),
    }
    assert {rule for rule in egress_rules(api) if rule[0] == alb} == {
        (alb, "tcp", 8000, 8000, service)
    }


def test_api_tasks_take_only_the_container_port_from_the_load_balancer(api: Template) -> None:
    alb, service = groups(api)
    assert {rule for rule in ingress_rules(api) if rule[0] == service} == {
        (service, "tcp", 8000, 8000, alb)
    }


def test_api_tasks_reach_out_on_https_only_until_the_database_lets_them_in(api: Template) -> None:
    _, service = groups(api)
    assert {rule for rule in egress_rules(api) if rule[0] == service} == {
        (service, "tcp", 443, 443, "0.0.0.0/0")
    }


def test_the_service_runs_private_tasks_and_rolls_back_a_failed_deployment(
    api: Template,
) -> None:
    api.has_resource_properties(
        "AWS::ECS::Service",
        Match.object_like(
            {
                "LaunchType": "FARGATE",
                "DeploymentConfiguration": Match.object_like(
                    {
                        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                        "MinimumHealthyPercent": 100,
                        "MaximumPercent": 200,
                    }
                ),
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": Match.object_like(
                        {
                            "AssignPublicIp": "DISABLED",
                            "Subnets": [
                                {"Ref": "VpcPrivateSubnet1Subnet536B997A"},
                                {"Ref": "VpcPrivateSubnet2Subnet3788AAA1"},
                            ],
                        }
                    )
                },
            }
        ),
    )


def test_a_deploy_leaves_the_task_count_to_auto_scaling(api: Template, prod_api: Template) -> None:
    # A DesiredCount in the template is applied on every update of the service (each deploy
    # brings a new task definition) and would undo a scale-out.
    for template in (api, prod_api):
        (service,) = resources(template, "AWS::ECS::Service").values()
        assert "DesiredCount" not in service["Properties"]


def test_tasks_are_spread_over_two_azs_and_rebalanced_after_an_outage(
    prod_api: Template,
) -> None:
    (service,) = resources(prod_api, "AWS::ECS::Service").values()
    props = service["Properties"]
    assert props["AvailabilityZoneRebalancing"] == "ENABLED"
    subnets = props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    zones = {
        json.dumps(
            resources(prod_api, "AWS::EC2::Subnet")[subnet["Ref"]]["Properties"]["AvailabilityZone"]
        )
        for subnet in subnets
    }
    assert len(zones) == 2


def test_dev_scales_from_one_task_and_prod_never_runs_fewer_than_two(
    api: Template, prod_api: Template
) -> None:
    api.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 2}
    )
    prod_api.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 4}
    )


def test_the_task_range_and_scaling_targets_follow_the_settings() -> None:
    template = build(
        dev(
            api_min_tasks=3,
            api_max_tasks=7,
            api_cpu_target_percent=45,
            api_requests_per_target_per_minute=400,
        )
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 3, "MaxCapacity": 7}
    )
    assert scaling_targets(template) == {
        "ECSServiceAverageCPUUtilization": 45,
        "ALBRequestCountPerTarget": 400,
    }


def scaling_targets(template: Template) -> dict[str, Any]:
    """Predefined metric -> target value, of every target tracking policy."""
    policies = resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    # Counted first: a third policy on the same metric would vanish in the dict below.
    assert len(policies) == 2
    metrics = {}
    for policy in policies.values():
        config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        spec = config["PredefinedMetricSpecification"]
        metrics[spec["PredefinedMetricType"]] = config["TargetValue"]
    return metrics


def test_the_service_scales_on_cpu_and_on_requests_per_target(api: Template) -> None:
    assert scaling_targets(api) == {
        "ECSServiceAverageCPUUtilization": 60,
        "ALBRequestCountPerTarget": 1000,
    }


def test_the_database_secret_fields_are_injected_as_db_variables(api: Template) -> None:
    secret = only_logical_id(api, "AWS::SecretsManager::Secret", "DbSecret")
    injected = {s["Name"]: s["ValueFrom"] for s in container(api)["Secrets"]}
    expected = {
        "DB_HOST": "host",
        "DB_PORT": "port",
        "DB_USER": "username",
        "DB_PASSWORD": "password",
        "DB_NAME": "dbname",
    }
    assert injected == {
        name: {"Fn::Join": ["", [{"Ref": secret}, f":{field}::"]]}
        for name, field in expected.items()
    }


def test_only_the_execution_role_may_read_the_secret(api: Template) -> None:
    secret = only_logical_id(api, "AWS::SecretsManager::Secret", "DbSecret")
    readers = [
        policy["Properties"]["Roles"]
        for policy in resources(api, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Resource"] == {"Ref": secret}
    ]
    assert readers == [
        [{"Ref": only_logical_id(api, "AWS::IAM::Role", "ApiTaskDefinitionExecutionRole")}]
    ]


def test_the_container_logs_json_with_emf_metrics_to_its_log_group(api: Template) -> None:
    definition = container(api)
    environment = {e["Name"]: e["Value"] for e in definition["Environment"]}
    assert environment["WXHUB_LOG_FORMAT"] == "json"
    assert environment["WXHUB_METRICS"] == "emf"
    assert environment["WXHUB_METRICS_NAMESPACE"] == "wxhub/dev"
    assert environment["PORT"] == "8000"
    assert not {"DB_PASSWORD", "DATABASE_URL"} & set(environment)
    options = definition["LogConfiguration"]["Options"]
    assert definition["LogConfiguration"]["LogDriver"] == "awslogs"
    assert options["awslogs-group"] == {
        "Ref": only_logical_id(api, "AWS::Logs::LogGroup", "ApiLogs")
    }


def test_swagger_is_public_in_dev_and_private_in_prod(api: Template, prod_api: Template) -> None:
    def docs(template: Template) -> Any:
        environment = {e["Name"]: e["Value"] for e in container(template)["Environment"]}
        return environment["WXHUB_API_DOCS"]

    assert docs(api) == "on"
    assert docs(prod_api) == "off"


def test_the_container_runs_read_only_with_a_writable_tmp_and_an_init_process(
    api: Template,
) -> None:
    definition = container(api)
    assert definition["ReadonlyRootFilesystem"] is True
    assert definition["MountPoints"] == [
        {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}
    ]
    assert definition["LinuxParameters"]["InitProcessEnabled"] is True
    assert definition["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]


def test_cpu_and_memory_follow_the_settings(api: Template, prod_api: Template) -> None:
    api.has_resource_properties("AWS::ECS::TaskDefinition", {"Cpu": "256", "Memory": "512"})
    prod_api.has_resource_properties("AWS::ECS::TaskDefinition", {"Cpu": "512", "Memory": "1024"})
