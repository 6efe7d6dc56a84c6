"""The REST API: a Fargate service behind an internet-facing Application Load Balancer."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from wxhub_infra.containers import add_writable_tmp, app_environment, database_secrets
from wxhub_infra.settings import EnvironmentSettings

CONTAINER_NAME = "api"
CONTAINER_PORT = 8000
HEALTH_CHECK_PATH = "/healthz"
HTTPS_PORT = 443
HTTP_PORT = 80


class ApiService(Construct):
    """The API tasks, their load balancer and how they scale.

    Traffic path: internet -> ALB (443; 80 only redirects) -> tasks on 8000 in the app subnets.
    The tasks log in with ``db_secret`` (DB_HOST...); with ``db_read_host`` (an Aurora reader
    endpoint) they read there instead, as the same user.
    A deployment whose tasks never become healthy is rolled back by the circuit breaker.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        vpc: ec2.IVpc,
        public_subnets: ec2.SubnetSelection,
        app_subnets: ec2.SubnetSelection,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        db_secret: secretsmanager.ISecret,
        log_group: logs.ILogGroup,
        certificate_arn: str,
        db_read_host: str | None = None,
    ):
        super().__init__(scope, construct_id)
        # Outbound only to its targets on the container port, which CDK adds when the
        # targets are registered below.
        self.load_balancer_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="wxhub API load balancer: HTTPS, and HTTP for the redirect",
            allow_all_outbound=False,
        )
        # Outbound: HTTPS to AWS APIs (ECR, Logs, Secrets Manager, S3; through the NAT gateway
        # or the VPC endpoints, whose addresses are not known in advance) and MySQL to the
        # database, which Database.allow_from adds. Nothing else.
        self.service_security_group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=vpc,
            description="wxhub API tasks: the container port from the load balancer only",
            allow_all_outbound=False,
        )
        self.service_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs over HTTPS"
        )

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=f"wxhub-{settings.name}-api",
            cpu=settings.api_cpu,
            memory_limit_mib=settings.api_memory_mib,
        )
        container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=image,
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            environment={
                **app_environment(settings),
                "PORT": str(CONTAINER_PORT),
                "WEB_CONCURRENCY": str(settings.api_web_concurrency),
                "WXHUB_API_DOCS": "on" if settings.api_docs_served else "off",
                # An Aurora reader endpoint: the API reads there, with the user, password and
                # port of db_secret (wxhub.config). Not secret, so plain; absent with RDS MySQL,
                # where the API reads from the one instance.
                **({"DB_READ_HOST": db_read_host} if db_read_host else {}),
            },
            secrets=database_secrets(db_secret),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="api", log_group=log_group),
            readonly_root_filesystem=True,
            # Signals reach gunicorn (not ignored by a Python PID 1): clean drains on deploys.
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
        )
        add_writable_tmp(self.task_definition, container)

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            # No desired_count: auto scaling owns the count. With one in the template, every
            # deploy (a new task definition) would set a scaled-out service back to it.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=app_subnets,
            security_groups=[self.service_security_group],
            assign_public_ip=False,
            health_check_grace_period=Duration.seconds(60),
            # Fargate spreads the tasks over the app subnets' two AZs; after an AZ outage ECS
            # moves tasks back until both AZs run their share again.
            availability_zone_rebalancing=ecs.AvailabilityZoneRebalancing.ENABLED,
        )

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=public_subnets,
            security_group=self.load_balancer_security_group,
            deletion_protection=settings.deletion_protection,
            drop_invalid_header_fields=True,
        )
        self.https_listener = self.load_balancer.add_listener(
            "Https",
            port=HTTPS_PORT,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=True,
        )
        self.target_group = self.https_listener.add_targets(
            "Api",
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            deregistration_delay=Duration.seconds(30),
        )
        self.http_listener = self.load_balancer.add_redirect(
            source_port=HTTP_PORT,
            source_protocol=elbv2.ApplicationProtocol.HTTP,
            target_port=HTTPS_PORT,
            target_protocol=elbv2.ApplicationProtocol.HTTPS,
            open=True,
        )

        scaling = self.service.auto_scale_task_count(
            min_capacity=settings.api_min_tasks, max_capacity=settings.api_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "Cpu", target_utilization_percent=settings.api_cpu_target_percent
        )
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=settings.api_requests_per_target_per_minute,
            target_group=self.target_group,
        )
