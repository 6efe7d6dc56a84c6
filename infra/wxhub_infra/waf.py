"""The web ACL in front of the API's load balancer (AWS WAF): what it turns away before a task
sees the request.

Rules, in the order WAF evaluates them (the first that blocks ends the evaluation):

0. ``RatePerClientIp``: a client IP over ``api_requests_per_ip_per_5_minutes`` in any 5 minutes
   is answered 403 until its rate falls back under the limit.
1. ``DocsFromAllowedCidrs`` (only with ``api_docs_allowed_cidrs``): Swagger UI and the OpenAPI
   document answer 403 to every client outside those CIDRs.
2. ``AwsCommonRuleSet``: AWS's managed baseline (the OWASP kinds of probing). Its 2 KiB limit
   on query strings only counts: the API accepts up to 6 KiB (``MAX_QUERY_STRING_BYTES`` in
   wxhub.api.security, e.g. 200 station ids at once) and answers 414 itself above that.
3. ``AwsKnownBadInputs``: request patterns of known exploits (Log4Shell, Spring4Shell, ...).

Everything else is allowed. Each rule has its own CloudWatch metric (namespace AWS/WAFV2) and
sampled requests, so a 403 can be traced to the rule that sent it.
"""

from __future__ import annotations

import ipaddress

from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from wxhub_infra.settings import EnvironmentSettings

RATE_WINDOW_SECONDS = 300
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
# The common rule set's rule that blocks query strings over 2 KiB; see the module docstring.
QUERY_STRING_SIZE_RULE = "SizeRestrictions_QUERYSTRING"
# What flask-openapi3 serves under /api when WXHUB_API_DOCS is on, besides the data endpoints
# (/api/weather, /api/weather/stats, /api/stations...): Swagger UI (/api/docs, its assets under
# /api/swagger and /api/static, its OAuth redirect page), the OpenAPI document and the index
# page /api/. Matched on the URL-decoded, normalized path ("/api//docs", "/api/%64ocs").
DOCS_PATH_PATTERN = r"^/api/(docs|openapi\.json|swagger|oauth2-redirect\.html|static/|$)"


class ApiFirewall(Construct):
    """A regional web ACL with the rules above, associated with ``load_balancer``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        load_balancer: elbv2.IApplicationLoadBalancer,
    ):
        super().__init__(scope, construct_id)
        self._name = f"wxhub-{settings.name}"
        self.docs_ip_sets: list[wafv2.CfnIPSet] = []
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerClientIp",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=settings.api_requests_per_ip_per_5_minutes,
                        aggregate_key_type="IP",
                        evaluation_window_sec=RATE_WINDOW_SECONDS,
                    )
                ),
                visibility_config=self._visibility("RatePerClientIp"),
            ),
        ]
        if settings.api_docs_allowed_cidrs:
            rules.append(self._docs_rule(settings.api_docs_allowed_cidrs, priority=1))
        rules += [
            self._managed_rule_group(
                "AwsCommonRuleSet",
                COMMON_RULE_SET,
                priority=2,
                counted_only=[QUERY_STRING_SIZE_RULE],
            ),
            self._managed_rule_group("AwsKnownBadInputs", KNOWN_BAD_INPUTS_RULE_SET, priority=3),
        ]
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{self._name}-api",
            description=f"wxhub {settings.name}: the firewall of the API load balancer",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=self._visibility("WebAcl"),
        )
        self.association = wafv2.CfnWebACLAssociation(
            self,
            "Association",
            resource_arn=load_balancer.load_balancer_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _visibility(self, name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True,
            metric_name=f"{self._name}-{name}",
            sampled_requests_enabled=True,
        )

    def _managed_rule_group(
        self, name: str, group: str, *, priority: int, counted_only: list[str] | None = None
    ) -> wafv2.CfnWebACL.RuleProperty:
        """AWS's managed ``group`` with its own actions, except ``counted_only`` rules."""
        overrides = [
            wafv2.CfnWebACL.RuleActionOverrideProperty(
                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
            )
            for rule in counted_only or []
        ]
        return wafv2.CfnWebACL.RuleProperty(
            name=name,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=group,
                    rule_action_overrides=overrides or None,
                )
            ),
            visibility_config=self._visibility(name),
        )

    def _docs_rule(self, cidrs: tuple[str, ...], *, priority: int) -> wafv2.CfnWebACL.RuleProperty:
        """Block the docs paths unless the client's address is in one of the IP sets."""
        by_version: dict[int, list[str]] = {}
        for cidr in cidrs:
            by_version.setdefault(ipaddress.ip_network(cidr).version, []).append(cidr)
        self.docs_ip_sets = [
            wafv2.CfnIPSet(
                self,
                f"DocsAllowedIpv{version}",
                name=f"{self._name}-docs-ipv{version}",
                description="who may read Swagger UI and the OpenAPI document of the API",
                scope="REGIONAL",
                ip_address_version=f"IPV{version}",
                addresses=addresses,
            )
            for version, addresses in sorted(by_version.items())
        ]
        outside_every_set = [
            wafv2.CfnWebACL.StatementProperty(
                not_statement=wafv2.CfnWebACL.NotStatementProperty(
                    statement=wafv2.CfnWebACL.StatementProperty(
                        ip_set_reference_statement=wafv2.CfnWebACL.IPSetReferenceStatementProperty(
                            arn=ip_set.attr_arn
                        )
                    )
                )
            )
            for ip_set in self.docs_ip_sets
        ]
        docs_path = wafv2.CfnWebACL.StatementProperty(
            regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                regex_string=DOCS_PATH_PATTERN,
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                text_transformations=[
                    wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE"),
                    wafv2.CfnWebACL.TextTransformationProperty(priority=1, type="NORMALIZE_PATH"),
                ],
            )
        )
        return wafv2.CfnWebACL.RuleProperty(
            name="DocsFromAllowedCidrs",
            priority=priority,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                and_statement=wafv2.CfnWebACL.AndStatementProperty(
                    statements=[docs_path, *outside_every_set]
                )
            ),
            visibility_config=self._visibility("DocsFromAllowedCidrs"),
        )
