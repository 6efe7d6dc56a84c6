"""The per-environment settings and the context that completes them."""

from __future__ import annotations

import re
from typing import Any

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
    assert prod.api_min_tasks >= 2
    assert prod.api_max_tasks > prod.api_min_tasks


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


@pytest.mark.parametrize("shards", [0, 65])
def test_job_shards_outside_one_to_sixty_four_are_rejected(shards: int) -> None:
    with pytest.raises(SettingsError, match=r"job_shards is -?\d+; allowed 1\.\.64"):
        EnvironmentSettings(name="x", job_shards=shards)


def test_sixty_four_shards_are_a_setting_not_a_code_change() -> None:
    settings = settings_from_context(
        {"env": "prod", "jobShards": "64", "jobMaxConcurrentShards": "16"}
    )
    assert (settings.job_shards, settings.job_max_concurrent_shards) == (64, 16)


@pytest.mark.parametrize("concurrency", [0, 65])
def test_a_map_concurrency_outside_one_to_sixty_four_is_rejected(concurrency: int) -> None:
    with pytest.raises(SettingsError, match=r"job_max_concurrent_shards is -?\d+; allowed 1\.\.64"):
        EnvironmentSettings(name="x", job_max_concurrent_shards=concurrency)


@pytest.mark.parametrize("hours", [0, 24])
def test_a_run_timeout_of_a_day_or_more_is_rejected(hours: int) -> None:
    with pytest.raises(SettingsError, match=r"job_timeout_hours is \d+; allowed 1\.\.23"):
        EnvironmentSettings(name="x", job_timeout_hours=hours)


@pytest.mark.parametrize(("low", "high"), [(0, 2), (3, 2)])
def test_an_api_task_range_that_is_empty_or_starts_at_zero_is_rejected(low: int, high: int) -> None:
    with pytest.raises(SettingsError, match="allowed 1 <= api_min_tasks <= api_max_tasks"):
        EnvironmentSettings(name="x", api_min_tasks=low, api_max_tasks=high)


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


def test_both_environments_read_the_raw_bucket_alone_and_every_station() -> None:
    for settings in ENVIRONMENTS.values():
        assert settings.job_reads_raw_bucket
        assert settings.ghcn_sources == ()
        assert not settings.reads_ghcn_bucket
        assert (settings.job_stations, settings.job_country, settings.job_state) == ((), (), ())
        assert settings.job_bbox is None


def test_a_ghcn_prefix_or_object_is_a_source_in_noaas_bucket() -> None:
    settings = EnvironmentSettings(
        name="x",
        ghcn_sources=(
            "s3://noaa-ghcn-pds/csv.gz/by_station/",
            "s3://noaa-ghcn-pds/csv.gz/by_year/2026.csv.gz",
            "s3://noaa-ghcn-pds/ghcnd-stations.txt",
        ),
    )
    assert settings.reads_ghcn_bucket


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("noaa-ghcn-pds/csv.gz/by_station/", "is not an s3:// URI"),
        ("https://noaa-ghcn-pds.s3.amazonaws.com/csv.gz/", "is not an s3:// URI"),
        ("s3://my-mirror/csv.gz/by_station/", "is not in NOAA's bucket 'noaa-ghcn-pds'"),
        ("s3://noaa-ghcn-pds-mirror/csv.gz/", "is not in NOAA's bucket 'noaa-ghcn-pds'"),
        ("s3://noaa-ghcn-pds/", "is the whole bucket"),
        ("s3://noaa-ghcn-pds", "is the whole bucket"),
        ("s3://noaa-ghcn-pds/csv.gz/by_station/ s3://noaa-ghcn-pds/x", "contains white space"),
    ],
)
def test_a_ghcn_source_outside_noaas_bucket_or_not_s3_is_rejected(
    source: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"ghcn_sources: {source!r} {message}")):
        EnvironmentSettings(name="x", ghcn_sources=(source,))


def test_a_list_setting_given_as_one_string_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"job_state is 'IL'; give a tuple, e\.g\. \('IL',\)"):
        EnvironmentSettings(name="x", job_state="IL")  # type: ignore[arg-type]


def test_a_job_that_would_read_nothing_is_rejected() -> None:
    with pytest.raises(SettingsError, match="the job would read nothing"):
        EnvironmentSettings(name="x", job_reads_raw_bucket=False)


@pytest.mark.parametrize(
    ("field", "items", "shown"),
    [
        ("job_state", ("IL", "il"), "'il'"),
        ("job_state", ("ILL",), "'ILL'"),
        ("job_country", ("USA",), "'USA'"),
        ("job_country", ("U1",), "'U1'"),
        ("job_stations", ("USC00110072", "USC 1"), "'USC 1'"),
        ("job_stations", ("X" * 21,), repr("X" * 21)),
    ],
)
def test_a_selection_wxhub_run_would_refuse_is_rejected(
    field: str, items: tuple[str, ...], shown: str
) -> None:
    changes: dict[str, Any] = {field: items}
    with pytest.raises(SettingsError, match=re.escape(f"{field}: {shown}; allowed:")):
        EnvironmentSettings(name="x", **changes)


def test_states_countries_and_station_globs_wxhub_run_accepts_are_kept() -> None:
    settings = EnvironmentSettings(
        name="x",
        job_state=("IL", "IN"),
        job_country=("US", "CA"),
        job_stations=("USC0011*", "USW00094846", "CA00[1-6]?"),
    )
    assert settings.job_state == ("IL", "IN")


@pytest.mark.parametrize(
    "bbox",
    [
        (-181.0, 36.9, -87.0, 42.6),
        (-91.6, 36.9, 180.5, 42.6),
        (-91.6, -90.1, -87.0, 42.6),
        (-91.6, 36.9, -87.0, 91.0),
        (-87.0, 36.9, -91.6, 42.6),  # minimum longitude east of the maximum
        (-91.6, 42.6, -87.0, 36.9),  # minimum latitude north of the maximum
    ],
)
def test_a_box_outside_the_globe_or_upside_down_is_rejected(
    bbox: tuple[float, float, float, float],
) -> None:
    with pytest.raises(SettingsError, match=r"longitudes must be within -180\.\.180"):
        EnvironmentSettings(name="x", job_bbox=bbox)


@pytest.mark.parametrize(
    "bbox",
    [(-91.6, 36.9, -87.0), (-91.6, 36.9, -87.0, 42.6, 0.0), (float("nan"), 36.9, -87.0, 42.6)],
)
def test_a_box_that_is_not_four_numbers_is_rejected(bbox: tuple[float, ...]) -> None:
    with pytest.raises(SettingsError, match="is not four numbers MIN_LON,MIN_LAT,MAX_LON,MAX_LAT"):
        EnvironmentSettings(name="x", job_bbox=bbox)  # type: ignore[arg-type]


def test_a_box_on_the_edges_of_the_globe_is_accepted() -> None:
    bbox = (-180.0, -90.0, 180.0, 90.0)
    assert EnvironmentSettings(name="x", job_bbox=bbox).job_bbox == bbox


def test_context_sets_what_the_job_reads() -> None:
    settings = settings_from_context(
        {
            "env": "dev",
            "ghcnSources": "s3://noaa-ghcn-pds/csv.gz/by_station/, "
            "s3://noaa-ghcn-pds/ghcnd-stations.txt",
            "jobStations": "USC0011*,USW00094846",
            "jobCountry": "US",
            "jobState": "IL,IN",
            "jobBbox": "-91.6,36.9,-87,42.6",
            "jobReadsRawBucket": "false",
        }
    )
    assert settings.ghcn_sources == (
        "s3://noaa-ghcn-pds/csv.gz/by_station/",
        "s3://noaa-ghcn-pds/ghcnd-stations.txt",
    )
    assert settings.job_stations == ("USC0011*", "USW00094846")
    assert settings.job_country == ("US",)
    assert settings.job_state == ("IL", "IN")
    assert settings.job_bbox == (-91.6, 36.9, -87.0, 42.6)
    assert settings.job_reads_raw_bucket is False


def test_context_from_cdk_json_may_give_lists_numbers_and_booleans() -> None:
    settings = settings_from_context(
        {
            "env": "dev",
            "ghcnSources": ["s3://noaa-ghcn-pds/csv.gz/by_year/2026.csv.gz"],
            "jobState": ["IL"],
            "jobBbox": [-91.6, 36.9, -87, 42.6],
            "jobReadsRawBucket": True,
        }
    )
    assert settings.ghcn_sources == ("s3://noaa-ghcn-pds/csv.gz/by_year/2026.csv.gz",)
    assert settings.job_state == ("IL",)
    assert settings.job_bbox == (-91.6, 36.9, -87.0, 42.6)
    assert settings.job_reads_raw_bucket is True


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"jobBbox": "-91.6,36.9,east,42.6"}, "jobBbox '-91.6,36.9,east,42.6' is not four numbers"),
        ({"jobBbox": "-91.6,36.9,-87"}, r"job_bbox \(-91.6, 36.9, -87.0\) is not four numbers"),
        ({"jobBbox": "-87,36.9,-91.6,42.6"}, "each minimum at most its maximum"),
        ({"jobReadsRawBucket": "no"}, "jobReadsRawBucket 'no' is not true or false"),
        ({"jobState": "IL,Indiana"}, "job_state: 'Indiana'; allowed"),
        ({"ghcnSources": "s3://my-bucket/x/"}, "not in NOAA's bucket"),
    ],
)
def test_bad_job_context_is_rejected_with_what_is_allowed(
    context: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_context({"env": "dev", **context})


def test_names_derive_from_the_environment() -> None:
    dev = settings_for("dev")
    assert dev.main_stack_name == "Wxhub-dev"
    assert dev.registry_stack_name == "Wxhub-dev-registry"
    assert dev.repository_name == "wxhub-dev"
    assert dev.metrics_namespace == "wxhub/dev"
    assert dev.job_family == "wxhub-dev-job"


def test_docs_are_served_when_public_or_to_allowed_cidrs_and_off_otherwise() -> None:
    assert settings_for("dev").api_docs_served
    assert not settings_for("prod").api_docs_served
    restricted = EnvironmentSettings(
        name="x", api_docs_public=False, api_docs_allowed_cidrs=("203.0.113.0/24",)
    )
    assert restricted.api_docs_served


def test_context_gives_the_docs_cidrs_comma_separated() -> None:
    settings = settings_from_context(
        {"env": "prod", "apiDocsCidrs": "203.0.113.0/24, 2001:db8::/32"}
    )
    assert settings.api_docs_allowed_cidrs == ("203.0.113.0/24", "2001:db8::/32")


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        (("203.0.113.5/24",), "no host bits set"),
        (("not-a-network",), "not a network in CIDR notation"),
        (("0.0.0.0/0",), "is everyone"),
        (("::/0",), "is everyone"),
        ("203.0.113.0/24", "give a tuple"),
    ],
)
def test_bad_docs_cidrs_are_rejected_with_what_is_allowed(cidrs: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        EnvironmentSettings(name="x", api_docs_public=False, api_docs_allowed_cidrs=cidrs)


def test_docs_cidrs_with_public_docs_are_rejected_as_restricting_nothing() -> None:
    with pytest.raises(SettingsError, match="restricts nothing while api_docs_public is on"):
        EnvironmentSettings(name="x", api_docs_allowed_cidrs=("203.0.113.0/24",))


@pytest.mark.parametrize("limit", [9, 2_000_000_001])
def test_a_rate_limit_waf_cannot_take_is_rejected(limit: int) -> None:
    with pytest.raises(SettingsError, match=r"AWS WAF allows 10\.\.2000000000"):
        EnvironmentSettings(name="x", api_requests_per_ip_per_5_minutes=limit)


def test_prod_has_no_nat_gateway_and_reaches_aws_through_endpoints() -> None:
    prod = settings_for("prod")
    assert prod.nat_gateways == 0
    assert prod.vpc_endpoints


def test_no_nat_gateway_without_endpoints_is_rejected() -> None:
    with pytest.raises(SettingsError, match="turn vpc_endpoints on"):
        EnvironmentSettings(name="x", nat_gateways=0, vpc_endpoints=False)


@pytest.mark.parametrize("count", [-1, 3])
def test_a_nat_gateway_count_outside_0_to_2_is_rejected(count: int) -> None:
    with pytest.raises(SettingsError, match=r"allowed 0\.\.2"):
        EnvironmentSettings(name="x", nat_gateways=count, vpc_endpoints=True)


@pytest.mark.parametrize("reference", ["sha256:" + "0f" * 32, "a1" * 20, "check"])
def test_an_image_digest_or_tag_is_a_valid_image_reference(reference: str) -> None:
    assert EnvironmentSettings(name="x", image_tag=reference).image_tag == reference


@pytest.mark.parametrize("reference", ["sha256:abc", "latest tag", "repo:tag", ""])
def test_an_image_reference_ecr_could_not_resolve_is_rejected(reference: str) -> None:
    with pytest.raises(SettingsError, match="neither an image digest"):
        EnvironmentSettings(name="x", image_tag=reference or "-x")
