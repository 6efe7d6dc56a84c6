"""The migration task: `wxhub migrate` as a one-off Fargate task, the only one with the master
user's credentials.

It brings the schema up to date and creates or updates the job's and the API's database users
and their grants (wxhub.db.users), with the passwords of their own secrets. The job's state
machine runs it as its Migrate step (orchestration.py): first in every nightly execution, and
alone in the deploy's ``{"migrateOnly": true}`` executions, which .github/scripts/run-migrations
starts before and after each stack update (docs/deployment.md).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from wxhub_infra.containers import app_environment, app_user_secrets, database_secrets
from wxhub_infra.settings import EnvironmentSettings

CONTAINER_NAME = "migrate"
COMMAND = ["wxhub", "migrate"]
HTTPS_PORT = 443
# A migration is a few DDL statements and GRANTs: the smallest Fargate size.
CPU = 256
MEMORY_MIB = 512


class MigrationTask(Construct):
    """The task definition of `wxhub migrate` and the security group it runs in."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        vpc: ec2.IVpc,
        image: ecs.ContainerImage,
        master_secret: secretsmanager.ISecret,
        job_secret: secretsmanager.ISecret,
        api_secret: secretsmanager.ISecret,
        log_group: logs.ILogGroup,
    ):
        super().__init__(scope, construct_id)
        # Nothing connects to it. Outbound: HTTPS to AWS APIs (ECR, Logs, Secrets Manager) and
        # MySQL to the database (added by Database.allow_from).
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="wxhub migration task: no inbound traffic",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs over HTTPS"
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=settings.migration_family,
            cpu=CPU,
            memory_limit_mib=MEMORY_MIB,
        )
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=image,
            command=COMMAND,
            environment=app_environment(settings),
            # The master user (DB_*), and the two users it keeps: the only task with either.
            secrets={
                **database_secrets(master_secret),
                **app_user_secrets(job_secret, api_secret),
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="migrate", log_group=log_group),
            readonly_root_filesystem=True,
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
        )
