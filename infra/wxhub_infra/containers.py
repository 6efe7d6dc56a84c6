"""What the containers share: a database secret as env vars, a writable /tmp."""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager

from wxhub_infra.settings import EnvironmentSettings

TMP_VOLUME = "tmp"

# Environment variable -> JSON field of the RDS-generated secret (wxhub.config reads these).
DB_SECRET_FIELDS = {
    "DB_HOST": "host",
    "DB_PORT": "port",
    "DB_USER": "username",
    "DB_PASSWORD": "password",
    "DB_NAME": "dbname",
}


def database_secrets(secret: secretsmanager.ISecret) -> dict[str, ecs.Secret]:
    """The secret's fields as container secrets: ECS resolves them when the task starts.

    Adding them to a container grants the task's execution role read access to this one
    secret; the value never appears in the template, the task definition or the logs.
    """
    return {
        variable: ecs.Secret.from_secrets_manager(secret, field)
        for variable, field in DB_SECRET_FIELDS.items()
    }


def app_user_secrets(
    job_secret: secretsmanager.ISecret, api_secret: secretsmanager.ISecret
) -> dict[str, ecs.Secret]:
    """The job's and the API's user names and passwords, for the migration task alone:
    `wxhub migrate` creates the two users with them (WXHUB_DB_JOB_*, WXHUB_DB_API_*)."""
    return {
        "WXHUB_DB_JOB_USER": ecs.Secret.from_secrets_manager(job_secret, "username"),
        "WXHUB_DB_JOB_PASSWORD": ecs.Secret.from_secrets_manager(job_secret, "password"),
        "WXHUB_DB_API_USER": ecs.Secret.from_secrets_manager(api_secret, "username"),
        "WXHUB_DB_API_PASSWORD": ecs.Secret.from_secrets_manager(api_secret, "password"),
    }


def app_environment(settings: EnvironmentSettings) -> dict[str, str]:
    """The non-secret settings both entry points read (see wxhub.config)."""
    return {
        "WXHUB_LOG_FORMAT": "json",
        "WXHUB_METRICS": "emf",
        "WXHUB_METRICS_NAMESPACE": settings.metrics_namespace,
    }


def add_writable_tmp(
    task_definition: ecs.TaskDefinition, container: ecs.ContainerDefinition
) -> None:
    """Mount task storage on /tmp: the root filesystem is read-only, and the loader stages its
    LOAD DATA files in /tmp and gunicorn its worker heartbeat files."""
    task_definition.add_volume(name=TMP_VOLUME)
    container.add_mount_points(
        ecs.MountPoint(container_path="/tmp", source_volume=TMP_VOLUME, read_only=False)  # noqa: S108
    )
