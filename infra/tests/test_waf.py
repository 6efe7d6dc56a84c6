"""The web ACL in front of the API: rate limit per client IP, AWS's managed rules, and the
docs restricted to allowed CIDRs when a deployment names some."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk.assertions import Template

from tests.conftest import bare_stack, dev, only_logical_id, prod, resources
from wxhub_infra.settings import EnvironmentSettings
from wxhub_infra.waf import DOCS_PATH_PATTERN, ApiFirewall


def build(settings: EnvironmentSettings) -> Template:
    stack = bare_stack()
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    load_balancer = elbv2.ApplicationLoadBalancer(stack, "Alb", vpc=vpc, internet_facing=True)
    ApiFirewall(stack, "Firewall", settings=settings, load_balancer=load_balancer)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def firewall() -> Template:
    return build(dev())


@pytest.fixture(scope="module")
def restricted_docs() -> Template:
    return build(
        prod(api_docs_allowed_cidrs=("203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"))
    )


def web_acl(template: Template) -> dict[str, Any]:
    (acl,) = resources(template, "AWS::WAFv2::WebACL").values()
    props: dict[str, Any] = acl["Properties"]
    return props


def rules(template: Template) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in web_acl(template)["Rules"]}


def test_the_web_acl_is_regional_allows_by_default_and_guards_the_load_balancer(
    firewall: Template,
) -> None:
    acl = web_acl(firewall)
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    (association,) = resources(firewall, "AWS::WAFv2::WebACLAssociation").values()
    alb = only_logical_id(firewall, "AWS::ElasticLoadBalancingV2::LoadBalancer", "Alb")
    assert association["Properties"]["ResourceArn"] == {"Ref": alb}
    acl_id = only_logical_id(firewall, "AWS::WAFv2::WebACL", "FirewallWebAcl")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}


def test_a_client_ip_over_the_limit_in_five_minutes_is_blocked(firewall: Template) -> None:
    rate = rules(firewall)["RatePerClientIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Priority"] == 0
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement == {"Limit": 3000, "AggregateKeyType": "IP", "EvaluationWindowSec": 300}


def test_the_rate_limit_follows_the_setting() -> None:
    limit = rules(build(dev(api_requests_per_ip_per_5_minutes=500)))["RatePerClientIp"]
    assert limit["Statement"]["RateBasedStatement"]["Limit"] == 500


def test_aws_common_and_known_bad_inputs_rule_sets_block_with_their_own_actions(
    firewall: Template,
) -> None:
    found = rules(firewall)
    for name, group in (
        ("AwsCommonRuleSet", "AWSManagedRulesCommonRuleSet"),
        ("AwsKnownBadInputs", "AWSManagedRulesKnownBadInputsRuleSet"),
    ):
        statement = found[name]["Statement"]["ManagedRuleGroupStatement"]
        assert (statement["VendorName"], statement["Name"]) == ("AWS", group)
        assert found[name]["OverrideAction"] == {"None": {}}


def test_only_the_2_kib_query_string_rule_is_counted_since_the_api_takes_6_kib(
    firewall: Template,
) -> None:
    statement = rules(firewall)["AwsCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert statement["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_QUERYSTRING", "ActionToUse": {"Count": {}}}
    ]
    known_bad = rules(firewall)["AwsKnownBadInputs"]["Statement"]["ManagedRuleGroupStatement"]
    assert "RuleActionOverrides" not in known_bad


def test_every_rule_has_metrics_and_sampled_requests(firewall: Template) -> None:
    configs = [rule["VisibilityConfig"] for rule in rules(firewall).values()]
    configs.append(web_acl(firewall)["VisibilityConfig"])
    names = set()
    for config in configs:
        assert config["CloudWatchMetricsEnabled"] is True
        assert config["SampledRequestsEnabled"] is True
        names.add(config["MetricName"])
    assert len(names) == len(configs)


def test_without_allowed_cidrs_no_rule_or_ip_set_touches_the_docs(firewall: Template) -> None:
    assert set(rules(firewall)) == {"RatePerClientIp", "AwsCommonRuleSet", "AwsKnownBadInputs"}
    firewall.resource_count_is("AWS::WAFv2::IPSet", 0)


def test_allowed_cidrs_become_one_ip_set_per_address_family(restricted_docs: Template) -> None:
    sets = {
        ip_set["Properties"]["IPAddressVersion"]: ip_set["Properties"]
        for ip_set in resources(restricted_docs, "AWS::WAFv2::IPSet").values()
    }
    assert sets["IPV4"]["Addresses"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert sets["IPV6"]["Addresses"] == ["2001:db8::/32"]
    assert {s["Scope"] for s in sets.values()} == {"REGIONAL"}


def test_the_docs_are_blocked_for_clients_outside_every_allowed_set(
    restricted_docs: Template,
) -> None:
    docs = rules(restricted_docs)["DocsFromAllowedCidrs"]
    assert docs["Action"] == {"Block": {}}
    path, *outside = docs["Statement"]["AndStatement"]["Statements"]
    regex = path["RegexMatchStatement"]
    assert regex["RegexString"] == DOCS_PATH_PATTERN
    assert regex["FieldToMatch"] == {"UriPath": {}}
    assert [
        t["Type"] for t in sorted(regex["TextTransformations"], key=lambda t: t["Priority"])
    ] == [
        "URL_DECODE",
        "NORMALIZE_PATH",
    ]
    set_ids = {
        only_logical_id(restricted_docs, "AWS::WAFv2::IPSet", f"FirewallDocsAllowedIpv{v}")
        for v in (4, 6)
    }
    referenced = {
        s["NotStatement"]["Statement"]["IPSetReferenceStatement"]["Arn"]["Fn::GetAtt"][0]
        for s in outside
    }
    assert referenced == set_ids


def test_the_docs_rule_comes_after_the_rate_limit_and_before_the_managed_rules(
    restricted_docs: Template,
) -> None:
    order = [
        r["Name"] for r in sorted(rules(restricted_docs).values(), key=lambda r: r["Priority"])
    ]
    assert order == [
        "RatePerClientIp",
        "DocsFromAllowedCidrs",
        "AwsCommonRuleSet",
        "AwsKnownBadInputs",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs",
        "/api/openapi.json",
        "/api/swagger",
        "/api/swagger/swagger-ui.css",
        "/api/oauth2-redirect.html",
        "/api/static/x.js",
        "/api/",
    ],
)
def test_the_docs_pattern_covers_every_path_of_swagger_ui_and_the_document(path: str) -> None:
    assert re.search(DOCS_PATH_PATTERN, path)


@pytest.mark.parametrize(
    "path",
    [
        "/api/weather",
        "/api/weather/stats",
        "/api/stations",
        "/api/stations/USC00110072",
        "/healthz",
        "/readyz",
        "/",
        "/explorer/app.js",
    ],
)
def test_the_docs_pattern_leaves_the_data_endpoints_and_health_checks_alone(path: str) -> None:
    assert not re.search(DOCS_PATH_PATTERN, path)
