"""The VPC: two AZs, public / app / database subnets, endpoints on a flag."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from tests.conftest import (
    bare_stack,
    dev,
    egress_rules,
    ingress_rules,
    only_logical_id,
    resources,
)
from wxhub_infra.network import Network


def build(**changes: Any) -> tuple[Network, Template]:
    stack = bare_stack()
    network = Network(stack, "Network", settings=dev(**changes))
    return network, Template.from_stack(stack)


@pytest.fixture(scope="module")
def without_endpoints() -> Template:
    return build(vpc_endpoints=False)[1]


@pytest.fixture(scope="module")
def with_endpoints() -> tuple[Network, Template]:
    return build(vpc_endpoints=True)


def subnet_names(template: Template) -> list[str]:
    names = []
    for subnet in resources(template, "AWS::EC2::Subnet").values():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        names.append(tags["aws-cdk:subnet-name"])
    return sorted(names)


def test_the_vpc_spans_two_azs_with_a_public_app_and_database_subnet_in_each(
    without_endpoints: Template,
) -> None:
    assert subnet_names(without_endpoints) == [
        "app",
        "app",
        "database",
        "database",
        "public",
        "public",
    ]


def test_no_subnet_gives_instances_a_public_ip(without_endpoints: Template) -> None:
    subnets = resources(without_endpoints, "AWS::EC2::Subnet")
    assert len(subnets) == 6, "two AZs of public, app and database subnets"
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_database_subnets_have_no_route_out(without_endpoints: Template) -> None:
    routes = resources(without_endpoints, "AWS::EC2::Route")
    assert len(routes) == 4, "a default route in each public and each app subnet"
    for logical_id in routes:
        assert "database" not in logical_id


def test_app_subnets_reach_out_through_the_nat_gateway(without_endpoints: Template) -> None:
    without_endpoints.resource_count_is("AWS::EC2::NatGateway", 1)
    nat_routes = [
        r
        for r in resources(without_endpoints, "AWS::EC2::Route").values()
        if "NatGatewayId" in r["Properties"]
    ]
    assert len(nat_routes) == 2


def test_nat_gateways_follow_the_setting() -> None:
    build(nat_gateways=2)[1].resource_count_is("AWS::EC2::NatGateway", 2)


def test_the_s3_gateway_endpoint_is_always_there(without_endpoints: Template) -> None:
    without_endpoints.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]},
        },
    )


def test_without_the_flag_there_is_no_interface_endpoint(without_endpoints: Template) -> None:
    without_endpoints.resource_count_is("AWS::EC2::VPCEndpoint", 1)


def test_the_flag_adds_interface_endpoints_for_ecr_logs_and_secrets_manager(
    with_endpoints: tuple[Network, Template],
) -> None:
    _, template = with_endpoints
    services = set()
    for endpoint in resources(template, "AWS::EC2::VPCEndpoint").values():
        if endpoint["Properties"]["VpcEndpointType"] == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True
            services.add(endpoint["Properties"]["ServiceName"]["Fn::Join"][1][2])
    assert services == {".ecr.api", ".ecr.dkr", ".logs", ".secretsmanager"}


def test_interface_endpoints_are_closed_until_a_task_group_is_let_in(
    with_endpoints: tuple[Network, Template],
) -> None:
    _, template = with_endpoints
    # The endpoints' group exists (else "no inbound rule" would hold of nothing).
    only_logical_id(template, "AWS::EC2::SecurityGroup", "NetworkEndpointSecurityGroup")
    assert ingress_rules(template) == set()


def test_a_task_group_let_in_reaches_each_endpoint_on_https_only() -> None:
    stack = bare_stack()
    network = Network(stack, "Network", settings=dev(vpc_endpoints=True))
    tasks = ec2.SecurityGroup(stack, "Tasks", vpc=network.vpc, allow_all_outbound=False)
    network.allow_endpoints_from(tasks)
    template = Template.from_stack(stack)
    tasks_id = stack.get_logical_id(tasks.node.default_child)  # type: ignore[arg-type]
    endpoints_id = only_logical_id(
        template, "AWS::EC2::SecurityGroup", "NetworkEndpointSecurityGroup"
    )
    assert ingress_rules(template) == {(endpoints_id, "tcp", 443, 443, tasks_id)}
    interface = [
        endpoint
        for endpoint in resources(template, "AWS::EC2::VPCEndpoint").values()
        if endpoint["Properties"]["VpcEndpointType"] == "Interface"
    ]
    assert len(interface) == 4, "ECR API, ECR Docker, CloudWatch Logs, Secrets Manager"
    for endpoint in interface:
        groups = [g["Fn::GetAtt"][0] for g in endpoint["Properties"]["SecurityGroupIds"]]
        assert groups == [endpoints_id]


def test_the_endpoint_group_opens_no_outbound_path(
    with_endpoints: tuple[Network, Template],
) -> None:
    _, template = with_endpoints
    assert {rule[4] for rule in egress_rules(template)} == {"255.255.255.255/32"}


def test_rejected_traffic_is_logged_with_retention(without_endpoints: Template) -> None:
    without_endpoints.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "REJECT", "LogDestinationType": "cloud-watch-logs"}
    )
    without_endpoints.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 14})


def test_the_app_subnet_ids_are_the_two_private_subnets(
    with_endpoints: tuple[Network, Template],
) -> None:
    network, _ = with_endpoints
    assert len(network.app_subnet_ids) == 2


@pytest.fixture(scope="module")
def without_nat() -> Template:
    return build(nat_gateways=0, vpc_endpoints=True)[1]


def test_without_nat_gateways_the_app_subnets_are_isolated_with_no_route_out(
    without_nat: Template,
) -> None:
    without_nat.resource_count_is("AWS::EC2::NatGateway", 0)
    assert subnet_names(without_nat).count("app") == 2
    routes = resources(without_nat, "AWS::EC2::Route")
    assert len(routes) == 2, "the public subnets' default routes to the internet gateway only"
    for name in routes:
        assert "public" in name
    for subnet_id, subnet in resources(without_nat, "AWS::EC2::Subnet").items():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        if tags["aws-cdk:subnet-name"] == "app":
            assert tags["aws-cdk:subnet-type"] == "Isolated", subnet_id


def test_without_nat_gateways_the_s3_gateway_and_every_interface_endpoint_remain(
    without_nat: Template,
) -> None:
    kinds = sorted(
        e["Properties"]["VpcEndpointType"]
        for e in resources(without_nat, "AWS::EC2::VPCEndpoint").values()
    )
    assert kinds == ["Gateway", "Interface", "Interface", "Interface", "Interface"]


def test_without_nat_a_ghcn_job_is_refused_outside_us_east_1_by_a_template_rule() -> None:
    _, template = build(
        nat_gateways=0,
        vpc_endpoints=True,
        ghcn_sources=("s3://noaa-ghcn-pds/csv.gz/by_station/",),
    )
    rules = template.to_json()["Rules"]
    (rule,) = [r for name, r in rules.items() if name.startswith("NetworkGhcnBucket")]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "noaa-ghcn-pds" in assertion["AssertDescription"]


@pytest.mark.parametrize(
    "changes",
    [
        {"nat_gateways": 0, "vpc_endpoints": True},
        {"nat_gateways": 1, "ghcn_sources": ("s3://noaa-ghcn-pds/csv.gz/by_station/",)},
    ],
)
def test_the_region_rule_is_only_there_for_a_ghcn_job_without_nat(changes: dict[str, Any]) -> None:
    _, template = build(**changes)
    rules = template.to_json().get("Rules", {})
    assert [name for name in rules if name.startswith("NetworkGhcnBucket")] == []


def test_turning_nat_gateways_on_or_off_keeps_every_subnet_in_place() -> None:
    # Same logical ids and ranges: CloudFormation updates the subnets (tags, routes) instead of
    # replacing them under the running tasks.
    def subnets(nat_gateways: int) -> dict[str, Any]:
        _, template = build(nat_gateways=nat_gateways, vpc_endpoints=True)
        found = resources(template, "AWS::EC2::Subnet").items()
        return {name: subnet["Properties"]["CidrBlock"] for name, subnet in found}

    assert subnets(0) == subnets(1)
