"""The per-environment settings and the context that completes them."""

from __future__ import annotations

import pytest

from wxhub_infra.settings import (
    ENVIRONMENTS,
    EnvironmentSettings,
    SettingsError,
    settings_for,
    settings_from_context,
)


def test_defaults_are_the_smallest_database_and_a_nightly_schedule() -> None:
    dev = settings_for("dev")
    assert dev.db_instance_class == "db.t3.micro"
    assert dev.job_schedule == "cron(0 1 * * ? *)"
    assert dev.job_shards == 1


def test_there_are_exactly_two_environments() -> None:
    assert sorted(ENVIRONMENTS) == ["dev", "prod"]


def test_prod_is_highly_available_protected_and_keeps_swagger_private() -> None:
    prod = settings_for("prod")
    assert prod.db_multi_az
    assert prod.deletion_protection
    assert prod.db_backup_retention_days > settings_for("dev").db_backup_retention_days
    assert not prod.api_docs_public
    assert prod.vpc_endpoints
    assert prod.api_max_tasks > 1


def test_dev_is_single_az_unprotected_with_public_swagger() -> None:
    dev = settings_for("dev")
    assert not dev.db_multi_az
    assert not dev.deletion_protection
    assert dev.api_docs_public
    assert not dev.vpc_endpoints


def test_an_unknown_environment_is_rejected_with_the_known_names() -> None:
    with pytest.raises(SettingsError, match=r"-c env=NAME.*\['dev', 'prod'\]"):
        settings_for("staging")


def test_a_missing_environment_is_rejected() -> None:
    with pytest.raises(SettingsError, match="unknown environment None"):
        settings_from_context({})


def test_context_sets_the_deployment_values() -> None:
    settings = settings_from_context(
        {
            "env": "prod",
            "imageTag": "0123abc",
            "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123",
            "domainName": "weather.example.com",
            "alarmEmail": "ops@example.com",
            "schedule": "rate(1 hour)",
            "jobShards": "3",
        }
    )
    assert settings.name == "prod"
    assert settings.image_tag == "0123abc"
    assert settings.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123"
    assert settings.domain_name == "weather.example.com"
    assert settings.alarm_email == "ops@example.com"
    assert settings.job_schedule == "rate(1 hour)"
    assert settings.job_shards == 3


def test_an_hourly_schedule_is_a_valid_setting() -> None:
    assert EnvironmentSettings(name="x", job_schedule="cron(0 * * * ? *)").job_schedule


@pytest.mark.parametrize("shards", [0, 6])
def test_job_shards_outside_one_to_five_are_rejected(shards: int) -> None:
    with pytest.raises(SettingsError, match=r"allowed 1\.\.5"):
        EnvironmentSettings(name="x", job_shards=shards)


def test_a_non_numeric_shard_count_in_context_is_rejected() -> None:
    with pytest.raises(SettingsError, match="jobShards 'two'"):
        settings_from_context({"env": "dev", "jobShards": "two"})


def test_a_schedule_that_is_not_cron_or_rate_is_rejected() -> None:
    with pytest.raises(SettingsError, match="not an EventBridge expression"):
        EnvironmentSettings(name="x", job_schedule="0 1 * * *")


def test_a_log_retention_cloudwatch_does_not_offer_is_rejected() -> None:
    with pytest.raises(SettingsError, match="log_retention_days is 10"):
        EnvironmentSettings(name="x", log_retention_days=10)


def test_a_certificate_arn_that_is_not_acm_is_rejected() -> None:
    with pytest.raises(SettingsError, match="not an ACM certificate ARN"):
        EnvironmentSettings(name="x", certificate_arn="arn:aws:iam::123456789012:role/x")


def test_an_instance_class_without_the_db_prefix_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"like db\.t3\.micro"):
        EnvironmentSettings(name="x", db_instance_class="t3.micro")


def test_names_derive_from_the_environment() -> None:
    dev = settings_for("dev")
    assert dev.main_stack_name == "Wxhub-dev"
    assert dev.registry_stack_name == "Wxhub-dev-registry"
    assert dev.repository_name == "wxhub-dev"
    assert dev.metrics_namespace == "wxhub/dev"
    assert dev.job_family == "wxhub-dev-job"
