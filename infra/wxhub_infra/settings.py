"""Every per-environment choice of the infrastructure, in one typed place.

The stacks and constructs never test ``env == "prod"``: they read a field of
:class:`EnvironmentSettings`, so what differs between dev and prod is visible here and nowhere
else. A few values are not the environment's but the deployment's (the certificate, the image
tag, where alarms go); they come from CDK context (``-c name=value``) and are merged in by
:func:`settings_from_context`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs

# EventBridge runs at most five targets per rule; one target per shard keeps the schedule a
# single rule that an operator can read.
MAX_JOB_SHARDS = 5

# CloudWatch Logs accepts only these retention periods (days -> aws_logs.RetentionDays name).
LOG_RETENTION_NAMES = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
}

_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")


class SettingsError(ValueError):
    """A setting or a context value that cannot work; the message says what is allowed."""


@dataclass(frozen=True)
class EnvironmentSettings:
    """What one environment (dev, prod) of wxhub is made of."""

    name: str
    # --- database (RDS MySQL 8.4) ---
    db_instance_class: str = "db.t3.micro"
    db_allocated_storage_gib: int = 20
    # Storage autoscaling ceiling: the disk grows by itself instead of filling up at night.
    db_max_allocated_storage_gib: int = 100
    db_backup_retention_days: int = 1
    db_multi_az: bool = False
    # Applies to the database and the load balancer: the two things a mistaken
    # `cdk destroy` must not take away.
    deletion_protection: bool = False
    # Single-user rotation changes the password under running tasks, which read the secret
    # only when they start; see docs/deployment.md before turning it on.
    db_secret_rotation: bool = False
    # --- API service (Fargate behind an ALB) ---
    api_cpu: int = 256
    api_memory_mib: int = 512
    api_web_concurrency: int = 2
    api_max_tasks: int = 2
    api_cpu_target_percent: int = 60
    api_requests_per_target_per_minute: int = 1000
    api_docs_public: bool = True
    # --- ingestion job (scheduled Fargate task) ---
    job_cpu: int = 512
    job_memory_mib: int = 1024
    job_schedule: str = "cron(0 1 * * ? *)"
    job_shards: int = 1
    # --- network ---
    nat_gateways: int = 1
    vpc_endpoints: bool = False
    # --- observability ---
    log_retention_days: int = 14
    # --- per deployment, from context ---
    certificate_arn: str | None = None
    domain_name: str | None = None
    alarm_email: str | None = None
    image_tag: str | None = None

    def __post_init__(self) -> None:
        """Reject values that would only fail later, inside CloudFormation."""
        if not 1 <= self.job_shards <= MAX_JOB_SHARDS:
            raise SettingsError(
                f"job_shards is {self.job_shards}; allowed 1..{MAX_JOB_SHARDS} "
                "(one EventBridge target per shard, at most five targets per rule)"
            )
        if not _SCHEDULE.match(self.job_schedule):
            raise SettingsError(
                f"job schedule {self.job_schedule!r} is not an EventBridge expression; "
                "use e.g. 'cron(0 1 * * ? *)' or 'rate(1 hour)'"
            )
        if self.log_retention_days not in LOG_RETENTION_NAMES:
            raise SettingsError(
                f"log_retention_days is {self.log_retention_days}; "
                f"allowed {sorted(LOG_RETENTION_NAMES)}"
            )
        if self.api_max_tasks < 1:
            raise SettingsError(f"api_max_tasks is {self.api_max_tasks}; it must be at least 1")
        if not self.db_instance_class.startswith("db."):
            raise SettingsError(
                f"db_instance_class {self.db_instance_class!r}: "
                "must be an RDS instance class like db.t3.micro"
            )
        if self.certificate_arn is not None and not _CERTIFICATE_ARN.match(self.certificate_arn):
            raise SettingsError(
                f"certificateArn {self.certificate_arn!r} is not an ACM certificate ARN "
                "(arn:aws:acm:<region>:<account>:certificate/<id>)"
            )

    @property
    def log_retention(self) -> logs.RetentionDays:
        """How long every log group of this environment keeps its events."""
        return logs.RetentionDays[LOG_RETENTION_NAMES[self.log_retention_days]]

    @property
    def main_stack_name(self) -> str:
        """The stack with everything but the image registry."""
        return f"Wxhub-{self.name}"

    @property
    def registry_stack_name(self) -> str:
        """The stack with the ECR repository only, deployed before the first image exists."""
        return f"Wxhub-{self.name}-registry"

    @property
    def repository_name(self) -> str:
        """Known to both stacks by name, so the main stack imports nothing across stacks."""
        return f"wxhub-{self.name}"

    @property
    def metrics_namespace(self) -> str:
        """The CloudWatch namespace the app writes its EMF metrics to (WXHUB_METRICS_NAMESPACE)."""
        return f"wxhub/{self.name}"

    @property
    def job_family(self) -> str:
        """The job's task definition family: stable, so alarms and the deploy flow can name it."""
        return f"wxhub-{self.name}-job"


ENVIRONMENTS: dict[str, EnvironmentSettings] = {
    "dev": EnvironmentSettings(name="dev"),
    "prod": EnvironmentSettings(
        name="prod",
        db_backup_retention_days=14,
        db_multi_az=True,
        deletion_protection=True,
        api_cpu=512,
        api_memory_mib=1024,
        api_web_concurrency=3,
        api_max_tasks=4,
        api_docs_public=False,
        job_cpu=1024,
        job_memory_mib=2048,
        # One NAT gateway per AZ: egress survives the loss of one AZ, like the database.
        nat_gateways=2,
        # Image pulls, logs and the secret stay on the AWS network instead of the NAT path.
        vpc_endpoints=True,
        log_retention_days=90,
    ),
}

# Context keys (`-c key=value`) that set a field for one deployment.
CONTEXT_FIELDS = {
    "certificateArn": "certificate_arn",
    "domainName": "domain_name",
    "alarmEmail": "alarm_email",
    "imageTag": "image_tag",
    "schedule": "job_schedule",
    "jobShards": "job_shards",
}


def settings_for(env: str | None) -> EnvironmentSettings:
    """The settings of environment ``env``; an unknown name is an error listing the known ones."""
    if env not in ENVIRONMENTS:
        raise SettingsError(
            f"unknown environment {env!r}: pass -c env=NAME with NAME one of {sorted(ENVIRONMENTS)}"
        )
    return ENVIRONMENTS[env]


def settings_from_context(context: Mapping[str, Any]) -> EnvironmentSettings:
    """The environment named by ``context["env"]`` with the per-deployment context merged in.

    ``context`` is what ``node.try_get_context`` sees; values given on the command line arrive
    as strings, so ``jobShards`` is converted here.
    """
    base = settings_for(context.get("env"))
    overrides: dict[str, Any] = {}
    for key, field in CONTEXT_FIELDS.items():
        value = context.get(key)
        if value is None or value == "":
            continue
        if field == "job_shards":
            try:
                value = int(value)
            except ValueError:
                raise SettingsError(f"jobShards {value!r} is not a whole number") from None
        overrides[field] = value
    return dataclasses.replace(base, **overrides)
