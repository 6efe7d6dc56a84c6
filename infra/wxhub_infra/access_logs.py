"""The load balancer's access logs: one line per request (client, TLS, target, timings, the
WAF's verdict) in a private S3 bucket, kept as long as the environment's other logs.

ALB access logs can be written only to a bucket encrypted with S3-managed keys (SSE-S3), not
KMS, and only by Elastic Load Balancing's log delivery, which the bucket policy lets in. Who
that is depends on the region: the log delivery service principal in regions opened since
August 2022, an ELB account of AWS's own in the older ones. The stacks are region-agnostic, so
the policy names the service principal always and, through a mapping of every region the CDK
knows, the region's ELB account where it has one (the stack's own account elsewhere, which
adds nothing).
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, CfnMapping, Duration, Fn, region_info
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from wxhub_infra.settings import EnvironmentSettings

LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
API_PREFIX = "api"
NO_ELB_ACCOUNT = "none"


def elb_log_accounts() -> dict[str, str]:
    """Region -> the root ARN of its ELB log delivery account, or ``none`` (newer regions)."""
    accounts = {}
    for region in region_info.RegionInfo.regions:
        account = region.elbv2_account
        accounts[region.name] = (
            f"arn:{region.partition}:iam::{account}:root" if account else NO_ELB_ACCOUNT
        )
    return accounts


class AccessLogs(Construct):
    """The access log bucket; ``enable_on`` points a load balancer's access logs at it."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings):
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # SSE-S3: the only encryption ALB access logs accept.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Logs are evidence: kept, versioned, for as long as the environment keeps its
            # other logs; a deleted or overwritten log stays recoverable for a week.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireLogs",
                    expiration=Duration.days(settings.log_retention_days),
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        self._mapping = CfnMapping(
            self,
            "ElbLogAccounts",
            mapping={region: {"principal": arn} for region, arn in elb_log_accounts().items()},
        )
        self._has_elb_account = CfnCondition(
            self,
            "RegionHasElbLogAccount",
            expression=Fn.condition_not(
                Fn.condition_equals(
                    self._mapping.find_in_map(Aws.REGION, "principal"), NO_ELB_ACCOUNT
                )
            ),
        )

    def enable_on(
        self, load_balancer: elbv2.ApplicationLoadBalancer, prefix: str = API_PREFIX
    ) -> None:
        """Let ELB's log delivery write under ``prefix`` and turn the load balancer's logs on."""
        logs_of_this_account = self.bucket.arn_for_objects(f"{prefix}/AWSLogs/{Aws.ACCOUNT_ID}/*")
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ElbLogDelivery",
                principals=[iam.ServicePrincipal(LOG_DELIVERY_SERVICE)],
                actions=["s3:PutObject"],
                resources=[logs_of_this_account],
            )
        )
        legacy_account = Fn.condition_if(
            self._has_elb_account.logical_id,
            self._mapping.find_in_map(Aws.REGION, "principal"),
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:root",
        ).to_string()
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ElbLogDeliveryOlderRegions",
                principals=[iam.ArnPrincipal(legacy_account)],
                actions=["s3:PutObject"],
                resources=[logs_of_this_account],
            )
        )
        for key, value in (
            ("access_logs.s3.enabled", "true"),
            ("access_logs.s3.bucket", self.bucket.bucket_name),
            ("access_logs.s3.prefix", prefix),
        ):
            load_balancer.set_attribute(key, value)
        # The load balancer checks that it may write (a test object) when logging is turned on.
        if self.bucket.policy is not None:
            load_balancer.node.add_dependency(self.bucket.policy)
