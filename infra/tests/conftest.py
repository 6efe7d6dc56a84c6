"""Shared helpers: bare stacks to build one construct into, and readers of synthesized rules.

Each construct is tested alone, built into a bare ``Stack`` with the least around it, and
asserted on its CloudFormation template; test_wxhub_stack.py then checks the composition.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

# jsii (which runs the CDK library in Node) prints a banner about Node support dates on Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")

import dataclasses

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from wxhub_infra.settings import EnvironmentSettings, settings_for

CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
)


def bare_stack() -> Stack:
    """An environment-agnostic stack of its own app, as the real stacks are."""
    return Stack(App(), "Test")


def dev(**changes: Any) -> EnvironmentSettings:
    """The dev settings with a certificate and an image tag, changed by ``changes``."""
    return dataclasses.replace(
        settings_for("dev"), certificate_arn=CERTIFICATE_ARN, image_tag="abc123", **changes
    )


def prod(**changes: Any) -> EnvironmentSettings:
    """The prod settings with a certificate and an image tag, changed by ``changes``."""
    return dataclasses.replace(
        settings_for("prod"), certificate_arn=CERTIFICATE_ARN, image_tag="abc123", **changes
    )


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every resource of ``resource_type``."""
    return {key: dict(value) for key, value in template.find_resources(resource_type).items()}


def logical_id(value: Any) -> Any:
    """The logical id behind a Ref or Fn::GetAtt, else the value itself (a CIDR, a number)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return value


def _group_rules(template: Template, direction: str) -> Iterator[tuple[Any, ...]]:
    inline_key = "SecurityGroupIngress" if direction == "ingress" else "SecurityGroupEgress"
    peer_key = "SourceSecurityGroupId" if direction == "ingress" else "DestinationSecurityGroupId"
    for group_id, group in resources(template, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get(inline_key, []):
            yield _rule(group_id, rule, peer_key)
    standalone = (
        "AWS::EC2::SecurityGroupIngress"
        if direction == "ingress"
        else ("AWS::EC2::SecurityGroupEgress")
    )
    for rule in resources(template, standalone).values():
        props = rule["Properties"]
        yield _rule(logical_id(props["GroupId"]), props, peer_key)


def _rule(group_id: str, rule: dict[str, Any], peer_key: str) -> tuple[Any, ...]:
    peer = rule.get("CidrIp") or rule.get("CidrIpv6") or logical_id(rule.get(peer_key))
    return (
        group_id,
        rule["IpProtocol"],
        _port(rule.get("FromPort")),
        _port(rule.get("ToPort")),
        peer,
    )


def _port(value: Any) -> Any:
    """A port number, or ``"<LogicalId.Attribute>"`` for one read from a resource (RDS)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return value


def ingress_rules(template: Template) -> set[tuple[Any, ...]]:
    """Every inbound rule as (group, protocol, from port, to port, CIDR or source group)."""
    return set(_group_rules(template, "ingress"))


def egress_rules(template: Template) -> set[tuple[Any, ...]]:
    """Every outbound rule as (group, protocol, from port, to port, CIDR or destination group)."""
    return set(_group_rules(template, "egress"))


def only_logical_id(template: Template, resource_type: str, prefix: str) -> str:
    """The logical id of the one resource of ``resource_type`` whose id starts with ``prefix``."""
    ids = [i for i in resources(template, resource_type) if i.startswith(prefix)]
    assert len(ids) == 1, f"{resource_type} {prefix}*: {ids}"
    return ids[0]
