"""The VPC: two AZs, three tiers of subnets, and optional private paths to AWS services."""

from __future__ import annotations

from aws_cdk import Aws, CfnRule, CfnRuleAssertion, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from wxhub_infra.settings import GHCN_BUCKET, EnvironmentSettings

HTTPS_PORT = 443
PUBLIC_SUBNETS = "public"
APP_SUBNETS = "app"
DATABASE_SUBNETS = "database"

# The AWS APIs the tasks call: image pulls (ECR API + registry), log delivery, the DB secret.
# S3 (ECR's image layers and the raw bucket) is a gateway endpoint, added always: it is free.
# Nothing else is called from the tasks: no SSM (WXHUB_SSM_PREFIX is not set), no STS (the task
# role's credentials come from the ECS agent), no CloudWatch API (metrics travel in the logs).
INTERFACE_ENDPOINT_SERVICES = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
}


class Network(Construct):
    """A VPC across two AZs where only the load balancer is reachable from the internet.

    - public subnets: the ALB and the NAT gateways, nothing else (no public IP by default);
    - app subnets (private, egress through NAT; isolated when ``nat_gateways`` is 0, reaching
      AWS through the VPC endpoints only): the ECS tasks;
    - database subnets (isolated, no route out): RDS.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings):
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC_SUBNETS,
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    # The ALB and NAT gateways bring their own addresses; nothing else here
                    # should get a public IP by accident.
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name=APP_SUBNETS,
                    subnet_type=(
                        ec2.SubnetType.PRIVATE_WITH_EGRESS
                        if settings.nat_gateways
                        else ec2.SubnetType.PRIVATE_ISOLATED
                    ),
                    cidr_mask=22,
                ),
                ec2.SubnetConfiguration(
                    name=DATABASE_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
        )
        # Rejected connections only: that is what answers "is a security group in the way?",
        # at a fraction of the volume of all traffic.
        flow_log_group = logs.LogGroup(self, "FlowLogs", retention=settings.log_retention)
        self.vpc.add_flow_log(
            "RejectedTraffic",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.app_subnets]
        )
        self.interface_endpoints: list[ec2.InterfaceVpcEndpoint] = []
        self.endpoint_security_group: ec2.SecurityGroup | None = None
        if settings.vpc_endpoints:
            # One group for all endpoints, closed until allow_endpoints_from lets a task group
            # in (not the whole VPC, as CDK's default would); endpoints only answer, so no
            # outbound rule.
            self.endpoint_security_group = ec2.SecurityGroup(
                self,
                "EndpointSecurityGroup",
                vpc=self.vpc,
                description="wxhub VPC interface endpoints: HTTPS from the task groups only",
                allow_all_outbound=False,
            )
            for name, service in INTERFACE_ENDPOINT_SERVICES.items():
                self.interface_endpoints.append(
                    self.vpc.add_interface_endpoint(
                        name,
                        service=service,
                        subnets=self.app_subnets,
                        private_dns_enabled=True,
                        security_groups=[self.endpoint_security_group],
                        open=False,
                    )
                )

        if settings.nat_gateways == 0 and settings.reads_ghcn_bucket:
            self._require_ghcn_region()

    def _require_ghcn_region(self) -> None:
        """Refuse, before anything is created, a stack outside us-east-1 whose job reads
        NOAA's bucket without a NAT gateway: the S3 gateway endpoint serves only its own
        region's S3, so those reads would have no route at all."""
        CfnRule(
            self,
            "GhcnBucketNeedsUsEast1WithoutNat",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals(Aws.REGION, "us-east-1"),
                    assert_description=(
                        f"The job reads {GHCN_BUCKET} (us-east-1) and this environment has no "
                        "NAT gateway: deploy it in us-east-1, or set nat_gateways to 1 or more"
                    ),
                )
            ],
        )

    @property
    def app_subnets(self) -> ec2.SubnetSelection:
        """Where the ECS tasks run."""
        return ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)

    @property
    def app_subnet_ids(self) -> list[str]:
        """The app subnets' ids, for `aws ecs run-task` outside the schedule."""
        return self.vpc.select_subnets(subnet_group_name=APP_SUBNETS).subnet_ids

    @property
    def database_subnets(self) -> ec2.SubnetSelection:
        """Where RDS runs: no route to or from the internet."""
        return ec2.SubnetSelection(subnet_group_name=DATABASE_SUBNETS)

    @property
    def public_subnets(self) -> ec2.SubnetSelection:
        """Where the load balancer runs."""
        return ec2.SubnetSelection(subnet_group_name=PUBLIC_SUBNETS)

    def allow_endpoints_from(self, security_group: ec2.ISecurityGroup) -> None:
        """Let ``security_group`` reach the interface endpoints (HTTPS), when there are any."""
        if self.endpoint_security_group is not None:
            self.endpoint_security_group.connections.allow_from(
                security_group, ec2.Port.tcp(HTTPS_PORT), "AWS API calls from the tasks"
            )
