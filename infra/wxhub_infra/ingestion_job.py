"""The nightly job: a Fargate task, started by an EventBridge schedule, that loads the raw bucket.

Each run is ``python -m wxhub.ingestion s3://<raw bucket>/`` (= ``wxhub run``): it migrates the
schema first, ingests the files the ledger has not seen, then aggregates. With ``job_shards`` N
above one, the schedule starts N tasks at once, the K-th with ``--shard K/N``, each loading a
stable share of the stations.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from wxhub_infra.containers import add_writable_tmp, app_environment, database_secrets
from wxhub_infra.settings import EnvironmentSettings

CONTAINER_NAME = "job"
HTTPS_PORT = 443


def job_command(bucket_name: str, shard: int | None = None, shards: int = 1) -> list[str]:
    """The container command of one run, or of shard ``shard`` (1-based) of ``shards``."""
    command = ["python", "-m", "wxhub.ingestion"]
    if shard is not None:
        command += ["--shard", f"{shard}/{shards}"]
    return [*command, f"s3://{bucket_name}/"]


class IngestionJob(Construct):
    """The raw landing bucket, the job's task definition, and the schedule that runs it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        vpc: ec2.IVpc,
        app_subnets: ec2.SubnetSelection,
        cluster: ecs.ICluster,
        image: ecs.ContainerImage,
        db_secret: secretsmanager.ISecret,
        log_group: logs.ILogGroup,
    ):
        super().__init__(scope, construct_id)
        # The bucket is retained with the stack's deletion: it holds the source of truth.
        self.raw_bucket = s3.Bucket(
            self,
            "RawBucket",
            encryption=s3.BucketEncryption.KMS_MANAGED,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                # A corrected station file replaces the old one; keep the old a while for
                # audits and undo, not forever.
                s3.LifecycleRule(
                    id="ExpireReplacedVersions",
                    noncurrent_version_expiration=Duration.days(90),
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
        )
        # Nothing connects to the job. Outbound as for the API: HTTPS to AWS APIs (S3, ECR,
        # Logs, Secrets Manager), MySQL to the database (added by Database.allow_from).
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="wxhub ingestion job: no inbound traffic",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs over HTTPS"
        )

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=settings.job_family,
            cpu=settings.job_cpu,
            memory_limit_mib=settings.job_memory_mib,
        )
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=image,
            command=job_command(self.raw_bucket.bucket_name),
            environment=app_environment(settings),
            secrets=database_secrets(db_secret),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="job", log_group=log_group),
            readonly_root_filesystem=True,
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
        )
        add_writable_tmp(self.task_definition, self.container)
        self.raw_bucket.grant_read(self.task_definition.task_role)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"run the wxhub ingestion job: {settings.job_schedule}",
            schedule=events.Schedule.expression(settings.job_schedule),
        )
        for target in self._targets(settings, cluster, app_subnets):
            self.schedule.add_target(target)

    def _targets(
        self,
        settings: EnvironmentSettings,
        cluster: ecs.ICluster,
        app_subnets: ec2.SubnetSelection,
    ) -> list[events_targets.EcsTask]:
        """One task for the whole job, or one per shard with its ``--shard K/N``."""
        shards = settings.job_shards
        overrides: list[list[events_targets.ContainerOverride] | None]
        if shards == 1:
            overrides = [None]
        else:
            overrides = [
                [
                    events_targets.ContainerOverride(
                        container_name=CONTAINER_NAME,
                        command=job_command(self.raw_bucket.bucket_name, shard, shards),
                    )
                ]
                for shard in range(1, shards + 1)
            ]
        return [
            events_targets.EcsTask(
                cluster=cluster,
                task_definition=self.task_definition,
                subnet_selection=app_subnets,
                security_groups=[self.security_group],
                assign_public_ip=False,
                platform_version=ecs.FargatePlatformVersion.LATEST,
                container_overrides=override,
                task_count=1,
            )
            for override in overrides
        ]
