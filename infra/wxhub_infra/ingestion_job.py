"""The nightly job's raw bucket, task definition and network: what each of its tasks runs in.

The schedule and the order of the steps are the state machine's (orchestration.py): it runs
this task definition with the commands ``wxhub ingest --shard K/N SOURCE...`` and
``wxhub aggregate``, after ``wxhub migrate`` in the migration task (migration_task.py: the
job's database user may not change the schema). The task definition's own command is the whole
job on one machine, ``python -m wxhub.ingestion SOURCE...`` (= ``wxhub run``: migrate, ingest,
aggregate), for a run by hand (docs/deployment.md).

The settings may add prefixes of NOAA's public GHCN-Daily bucket to the command line
(``ghcn_sources``), drop the raw bucket from it (``job_reads_raw_bucket``), and choose the
stations kept (``job_stations``, ``job_country``, ``job_state``, ``job_bbox``, passed as
WXHUB_STATIONS, WXHUB_COUNTRY, WXHUB_STATE, WXHUB_BBOX). The task role reads exactly the
buckets named on the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from wxhub_infra.containers import add_writable_tmp, app_environment, database_secrets
from wxhub_infra.settings import GHCN_BUCKET, EnvironmentSettings

CONTAINER_NAME = "job"
HTTPS_PORT = 443
# The bucket exists in the aws partition only (us-east-1), whatever partition the stack is in.
GHCN_BUCKET_ARN = f"arn:aws:s3:::{GHCN_BUCKET}"


def job_sources(settings: EnvironmentSettings, raw_bucket_name: str) -> list[str]:
    """The SOURCE arguments of every run: the raw bucket (unless turned off), then NOAA's."""
    raw = [f"s3://{raw_bucket_name}/"] if settings.job_reads_raw_bucket else []
    return [*raw, *settings.ghcn_sources]


def job_command(sources: Sequence[str]) -> list[str]:
    """The container command of a whole run on one machine (``wxhub run``).

    The sources are arguments, not WXHUB_SOURCES: click ignores that variable once a command
    line names any source, and the state machine's ingest commands must name theirs.
    """
    return ["python", "-m", "wxhub.ingestion", *sources]


def selection_environment(settings: EnvironmentSettings) -> dict[str, str]:
    """The stations a run keeps, as the variables `wxhub run` reads; only those that are set."""
    variables = {
        "WXHUB_STATIONS": ",".join(settings.job_stations),
        "WXHUB_COUNTRY": ",".join(settings.job_country),
        "WXHUB_STATE": ",".join(settings.job_state),
        # repr: a float's shortest exact form (-91.6, not -91.6000000000000014)
        "WXHUB_BBOX": ",".join(repr(float(v)) for v in settings.job_bbox or ()),
    }
    return {name: value for name, value in variables.items() if value}


def ghcn_read_statements() -> list[iam.PolicyStatement]:
    """Read-only access to NOAA's GHCN-Daily bucket: list it, get its objects, nothing else.

    The bucket's own policy lets anyone read; a signed request from the task role also needs
    this role's policy to allow it, as for any bucket of another account.
    """
    return [
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=[GHCN_BUCKET_ARN]),
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{GHCN_BUCKET_ARN}/*"]),
    ]


class IngestionJob(Construct):
    """The raw landing bucket, the job's task definition and its security group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        vpc: ec2.IVpc,
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
        self.sources = job_sources(settings, self.raw_bucket.bucket_name)
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
            command=job_command(self.sources),
            environment={**app_environment(settings), **selection_environment(settings)},
            secrets=database_secrets(db_secret),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="job", log_group=log_group),
            readonly_root_filesystem=True,
            linux_parameters=ecs.LinuxParameters(
                self, "LinuxParameters", init_process_enabled=True
            ),
        )
        add_writable_tmp(self.task_definition, self.container)
        if settings.job_reads_raw_bucket:
            self.raw_bucket.grant_read(self.task_definition.task_role)
        if settings.reads_ghcn_bucket:
            for statement in ghcn_read_statements():
                self.task_definition.add_to_task_role_policy(statement)
