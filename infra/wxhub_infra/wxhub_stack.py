"""``Wxhub-<env>``: everything but the image registry, as a thin composition of constructs.

Read top to bottom, this file is the wiring diagram: who may talk to whom, who may read what.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from wxhub_infra.access_logs import AccessLogs
from wxhub_infra.api_service import ApiService
from wxhub_infra.aurora import AuroraDatabase
from wxhub_infra.database import Database
from wxhub_infra.ingestion_job import CONTAINER_NAME as JOB_CONTAINER_NAME
from wxhub_infra.ingestion_job import IngestionJob
from wxhub_infra.migration_task import CONTAINER_NAME as MIGRATION_CONTAINER_NAME
from wxhub_infra.migration_task import MigrationTask
from wxhub_infra.monitoring import Monitoring
from wxhub_infra.network import Network
from wxhub_infra.orchestration import Orchestration
from wxhub_infra.settings import EnvironmentSettings
from wxhub_infra.waf import ApiFirewall

# Synthesis must not fail for want of these (the registry stack, deployed first, needs
# neither), but a deployment of this stack must: see _require.
MISSING_IMAGE_TAG = "missing-image-tag"
MISSING_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:000000000000:certificate/missing"


class WxhubStack(Stack):
    """The network, database, API service, ingestion job and monitoring of one environment."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, **kwargs: Any
    ):
        super().__init__(scope, construct_id, **kwargs)
        image_tag = self._require(
            settings.image_tag,
            "imageTag",
            "the image to run (its digest sha256:..., or its tag: the full git sha)",
            MISSING_IMAGE_TAG,
        )
        certificate_arn = self._require(
            settings.certificate_arn,
            "certificateArn",
            "the ACM certificate for HTTPS",
            MISSING_CERTIFICATE_ARN,
        )

        monitoring = Monitoring(self, "Monitoring", settings=settings)
        network = Network(self, "Network", settings=settings)
        # RDS MySQL, or an Aurora cluster whose reader endpoint the API reads from; the same
        # secrets, security group and allow_from either way.
        database: Database | AuroraDatabase = (
            AuroraDatabase if settings.uses_aurora else Database
        )(
            self,
            "Database",
            settings=settings,
            vpc=network.vpc,
            subnets=network.database_subnets,
        )
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        repository = ecr.Repository.from_repository_name(
            self, "Repository", settings.repository_name
        )
        # A digest (sha256:...) becomes repository@digest: what runs cannot change under a tag.
        image = ecs.ContainerImage.from_ecr_repository(repository, image_tag)

        api = ApiService(
            self,
            "Api",
            settings=settings,
            vpc=network.vpc,
            public_subnets=network.public_subnets,
            app_subnets=network.app_subnets,
            cluster=cluster,
            image=image,
            # Each task logs in as its own user, with its own secret (wxhub.db.users).
            db_secret=database.api_secret,
            log_group=monitoring.api_logs,
            certificate_arn=certificate_arn,
            # The job and the migration task get no read host: they write.
            db_read_host=database.read_host if isinstance(database, AuroraDatabase) else None,
        )
        # What reaches the API passes the web ACL first, and leaves a line in the access logs.
        ApiFirewall(self, "Firewall", settings=settings, load_balancer=api.load_balancer)
        AccessLogs(self, "AccessLogs", settings=settings).enable_on(api.load_balancer)
        job = IngestionJob(
            self,
            "IngestionJob",
            settings=settings,
            vpc=network.vpc,
            image=image,
            db_secret=database.job_secret,
            log_group=monitoring.job_logs,
        )
        # The master user's credentials go to this one-off task only.
        migration = MigrationTask(
            self,
            "Migration",
            settings=settings,
            vpc=network.vpc,
            image=image,
            master_secret=database.secret,
            job_secret=database.job_secret,
            api_secret=database.api_secret,
            log_group=monitoring.job_logs,
        )
        # The nightly run: one execution at a time of migrate (the migration task, with the
        # master user), N shards and aggregate (the job's task, with the job user).
        orchestration = Orchestration(
            self,
            "Orchestration",
            settings=settings,
            cluster=cluster,
            subnet_ids=network.app_subnet_ids,
            security_group=job.security_group,
            task_definition=job.task_definition,
            container_name=JOB_CONTAINER_NAME,
            sources=job.sources,
            alarm_topic=monitoring.topic,
            migration_task_definition=migration.task_definition,
            migration_container_name=MIGRATION_CONTAINER_NAME,
            migration_security_group=migration.security_group,
        )

        database.allow_from(api.service_security_group, "MySQL from the API tasks")
        database.allow_from(job.security_group, "MySQL from the ingestion job")
        database.allow_from(migration.security_group, "MySQL from the migration task")
        network.allow_endpoints_from(api.service_security_group)
        network.allow_endpoints_from(job.security_group)
        network.allow_endpoints_from(migration.security_group)

        monitoring.watch_api(
            load_balancer=api.load_balancer,
            target_group=api.target_group,
            # The API's auto scaling floor (ApiService); test_wxhub_stack checks they agree.
            min_healthy_hosts=settings.api_min_tasks,
        )
        monitoring.watch_job(cluster=cluster)
        monitoring.watch_runs()
        monitoring.watch_schedule(rule=orchestration.schedule)
        if isinstance(database, AuroraDatabase):
            database.watch(monitoring.topic)
        else:
            monitoring.watch_database(instance=database.instance)

        api_host = settings.domain_name or api.load_balancer.load_balancer_dns_name
        CfnOutput(self, "ApiUrl", value=f"https://{api_host}")
        CfnOutput(self, "RawBucketName", value=job.raw_bucket.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn)
        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(self, "ApiServiceName", value=api.service.service_name)
        CfnOutput(self, "JobTaskDefinitionArn", value=job.task_definition.task_definition_arn)
        CfnOutput(self, "JobSecurityGroupId", value=job.security_group.security_group_id)
        CfnOutput(
            self,
            "PrivateSubnetIds",
            value=Fn.join(",", network.app_subnet_ids),
        )
        CfnOutput(self, "JobContainerName", value=JOB_CONTAINER_NAME)
        # What .github/scripts/run-migrations registers the new image in (the state machine's
        # Migrate step runs it; a stack from before the state machine, in PrivateSubnetIds).
        CfnOutput(
            self,
            "MigrationTaskDefinitionArn",
            value=migration.task_definition.task_definition_arn,
        )
        CfnOutput(self, "MigrationContainerName", value=MIGRATION_CONTAINER_NAME)
        CfnOutput(
            self, "MigrationSecurityGroupId", value=migration.security_group.security_group_id
        )
        CfnOutput(self, "JobStateMachineArn", value=orchestration.state_machine.state_machine_arn)

    def _require(self, value: str | None, context_key: str, what: str, placeholder: str) -> str:
        """``value``, or a placeholder and an error that stops `cdk deploy` of this stack only.

        The CDK CLI refuses to deploy a stack with an error annotation, while the other stack of
        the app (the registry, deployed before any image exists) still deploys.
        """
        if value:
            return value
        Annotations.of(self).add_error(f"{self.stack_name} needs {what}: pass -c {context_key}=...")
        return placeholder
