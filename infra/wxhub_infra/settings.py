"""Every per-environment choice of the infrastructure, in one typed place.

The stacks and constructs never test ``env == "prod"``: they read a field of
:class:`EnvironmentSettings`, so what differs between dev and prod is visible here and nowhere
else. A few values are not the environment's but the deployment's (the certificate, the image
tag, where alarms go); they come from CDK context (``-c name=value``) and are merged in by
:func:`settings_from_context`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs

# The Step Functions Map state runs one ECS task per shard (orchestration.py); 64 keeps one
# night's Map state well inside the service's limits and the RDS connection budget.
MAX_JOB_SHARDS = 64
# Under a day: a nightly execution must end (or time out and alarm) before the next one.
MAX_JOB_TIMEOUT_HOURS = 23

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

# NOAA's GHCN-Daily on the AWS Open Data registry: public, in us-east-1, owned by another
# account. The job's task role may read it only when a ghcn_sources entry names it.
GHCN_BUCKET = "noaa-ghcn-pds"
GHCN_EXAMPLE_SOURCE = f"s3://{GHCN_BUCKET}/csv.gz/by_station/"

_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
# What `imageTag` may name: an image digest (what CI deploys, the same bytes in every
# environment) or an ECR tag (by hand: the full git sha the image was built from).
_IMAGE_REFERENCE = re.compile(r"sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")
# What `wxhub run` accepts in WXHUB_STATIONS, WXHUB_COUNTRY and WXHUB_STATE (see wxhub.cli):
# checked here too, so a bad value fails the synthesis rather than the first night's run.
_STATION_PATTERN = re.compile(r"[A-Za-z0-9_*?\[\]!-]{1,20}")
_TWO_CAPITALS = re.compile(r"[A-Z]{2}")
_STATIONS_ALLOWED = (
    "station ids or globs of 1 to 20 letters, digits and _-*?[]! (USC0011*,USW00094846)"
)
BBOX_FORMAT = "MIN_LON,MIN_LAT,MAX_LON,MAX_LAT"

# What runs the database: one RDS for MySQL instance (database.py), or an Aurora MySQL cluster
# with a writer and readers behind a reader endpoint that the API reads from (aurora.py).
DB_ENGINES = ("rds-mysql", "aurora-mysql")
# Aurora's instances: provisioned ones of db_instance_class, or Serverless v2 ones that scale
# between db_serverless_min_acu and db_serverless_max_acu capacity units each.
AURORA_CAPACITIES = ("provisioned", "serverless-v2")
# Aurora keeps at most 15 replicas per cluster.
MAX_AURORA_READERS = 15
# Serverless v2's range, in steps of half a unit. The floor is 0.5, not the 0 Aurora allows:
# an instance paused at 0 takes some 15 s to resume, five times the API's connect timeout, so
# the first requests after a quiet night would be answered 503.
MIN_SERVERLESS_ACU = 0.5
MAX_SERVERLESS_ACU = 256
# Aurora MySQL 3 runs on no class smaller than these (db.t3.medium, db.t4g.medium).
_AURORA_TOO_SMALL = ("micro", "small")


class SettingsError(ValueError):
    """A setting or a context value that cannot work; the message says what is allowed."""


@dataclass(frozen=True)
class EnvironmentSettings:
    """What one environment (dev, prod) of wxhub is made of."""

    name: str
    # --- database (RDS MySQL 8.4 by default; Aurora MySQL 3 by db_engine) ---
    db_engine: str = "rds-mysql"
    # The RDS instance's class, or each provisioned Aurora instance's (db.t4g.medium at least).
    db_instance_class: str = "db.t3.micro"
    # --- Aurora only (db_engine "aurora-mysql") ---
    db_aurora_capacity: str = "provisioned"
    db_serverless_min_acu: float = MIN_SERVERLESS_ACU
    db_serverless_max_acu: float = 4
    # The readers the template makes, which are also auto scaling's floor; with a higher
    # ceiling, Application Auto Scaling adds readers while their average CPU stays above the
    # target, and removes the ones it added when it falls.
    db_min_readers: int = 1
    db_max_readers: int = 1
    db_reader_cpu_target_percent: int = 60
    db_allocated_storage_gib: int = 20
    # Storage autoscaling ceiling: the disk grows by itself instead of filling up at night.
    db_max_allocated_storage_gib: int = 100
    db_backup_retention_days: int = 1
    db_multi_az: bool = False
    # Applies to the database and the load balancer: the two things a mistaken
    # `cdk destroy` must not take away.
    deletion_protection: bool = False
    # Single-user rotation of the master secret, which only the one-off migration task reads
    # (the API and the job log in as users of their own); see docs/deployment.md.
    db_secret_rotation: bool = False
    # --- API service (Fargate behind an ALB) ---
    api_cpu: int = 256
    api_memory_mib: int = 512
    api_web_concurrency: int = 2
    # Auto scaling keeps the count between these (the service itself sets none); two or more
    # tasks are spread over both AZs, so the API survives the loss of one like the database.
    api_min_tasks: int = 1
    api_max_tasks: int = 2
    api_cpu_target_percent: int = 60
    api_requests_per_target_per_minute: int = 1000
    api_docs_public: bool = True
    # With api_docs_public off: serve Swagger UI and the OpenAPI document anyway, but the web
    # ACL answers 403 to any client outside these CIDRs (e.g. an office's "203.0.113.0/24").
    api_docs_allowed_cidrs: tuple[str, ...] = ()
    # --- the web ACL in front of the load balancer (AWS WAF) ---
    # Requests one client IP may make in any 5 minutes before it is answered 403 for a while:
    # 3000 is 10 a second, sustained, far above a person paging through the API.
    api_requests_per_ip_per_5_minutes: int = 3000
    # --- ingestion job (scheduled Fargate task) ---
    job_cpu: int = 512
    job_memory_mib: int = 1024
    job_schedule: str = "cron(0 1 * * ? *)"
    # Each scheduled execution: migrate once, `ingest --shard K/N` for K = 1..N (at most
    # job_max_concurrent_shards tasks at a time), then one aggregate (orchestration.py).
    job_shards: int = 1
    job_max_concurrent_shards: int = 8
    # An execution still running after this many hours (queued behind another included) is
    # stopped as TIMED_OUT, which alarms.
    job_timeout_hours: int = 12
    # --- what the job reads (its SOURCE arguments and its station selection) ---
    # The stack's raw bucket, s3://<raw bucket>/: what the job has always read.
    job_reads_raw_bucket: bool = True
    # Prefixes or objects of NOAA's GHCN-Daily bucket read after the raw bucket, e.g.
    # s3://noaa-ghcn-pds/csv.gz/by_station/ and s3://noaa-ghcn-pds/ghcnd-stations.txt.
    ghcn_sources: tuple[str, ...] = ()
    # The stations each run keeps (WXHUB_STATIONS, WXHUB_COUNTRY, WXHUB_STATE, WXHUB_BBOX),
    # from every source of the run, the raw bucket's files included; empty: every station.
    # State and box are looked up in NOAA's ghcnd-stations.txt, which must be loaded.
    job_stations: tuple[str, ...] = ()
    job_country: tuple[str, ...] = ()
    job_state: tuple[str, ...] = ()
    # (min_lon, min_lat, max_lon, max_lat) in decimal degrees
    job_bbox: tuple[float, float, float, float] | None = None
    # --- network ---
    # 0: the app subnets have no route to the internet at all, and the tasks reach AWS through
    # the VPC endpoints only (vpc_endpoints must be on); see docs/deployment.md, "Egress".
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
                "(one ECS task per shard in the state machine's Map state)"
            )
        if not 1 <= self.job_max_concurrent_shards <= MAX_JOB_SHARDS:
            raise SettingsError(
                f"job_max_concurrent_shards is {self.job_max_concurrent_shards}; "
                f"allowed 1..{MAX_JOB_SHARDS}"
            )
        if not 1 <= self.job_timeout_hours <= MAX_JOB_TIMEOUT_HOURS:
            raise SettingsError(
                f"job_timeout_hours is {self.job_timeout_hours}; allowed 1..{MAX_JOB_TIMEOUT_HOURS}"
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
        if not 1 <= self.api_min_tasks <= self.api_max_tasks:
            raise SettingsError(
                f"api_min_tasks is {self.api_min_tasks} and api_max_tasks {self.api_max_tasks}; "
                "allowed 1 <= api_min_tasks <= api_max_tasks"
            )
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
        if not 10 <= self.api_requests_per_ip_per_5_minutes <= 2_000_000_000:
            raise SettingsError(
                f"api_requests_per_ip_per_5_minutes is {self.api_requests_per_ip_per_5_minutes}; "
                "AWS WAF allows 10..2000000000"
            )
        if not 0 <= self.nat_gateways <= 2:
            raise SettingsError(
                f"nat_gateways is {self.nat_gateways}; allowed 0..2 (at most one per AZ)"
            )
        if self.nat_gateways == 0 and not self.vpc_endpoints:
            raise SettingsError(
                "nat_gateways is 0 and vpc_endpoints is off: the tasks could reach neither ECR "
                "nor CloudWatch Logs nor Secrets Manager (turn vpc_endpoints on)"
            )
        self._check_database_engine()
        self._check_docs_cidrs()
        if self.image_tag is not None and not _IMAGE_REFERENCE.fullmatch(self.image_tag):
            raise SettingsError(
                f"imageTag {self.image_tag!r} is neither an image digest (sha256:<64 hex>) "
                "nor an ECR tag (the full git sha)"
            )
        self._check_job_sources()
        self._check_job_selection()

    def _check_database_engine(self) -> None:
        """An engine, a capacity and a reader range that Aurora (or RDS) accepts, and no
        Aurora-only setting on RDS, where it would be silently ignored."""
        if self.db_engine not in DB_ENGINES:
            raise SettingsError(
                f"db_engine is {self.db_engine!r}; allowed: {', '.join(DB_ENGINES)}"
            )
        if not self.uses_aurora:
            changed = [
                name
                for name in (
                    "db_aurora_capacity",
                    "db_serverless_min_acu",
                    "db_serverless_max_acu",
                    "db_min_readers",
                    "db_max_readers",
                    "db_reader_cpu_target_percent",
                )
                if getattr(self, name) != _DEFAULTS[name]
            ]
            if changed:
                raise SettingsError(
                    f"{', '.join(changed)}: Aurora settings, but db_engine is {self.db_engine!r} "
                    "(set db_engine to 'aurora-mysql', or leave them out)"
                )
            return
        if self.db_aurora_capacity not in AURORA_CAPACITIES:
            raise SettingsError(
                f"db_aurora_capacity is {self.db_aurora_capacity!r}; "
                f"allowed: {', '.join(AURORA_CAPACITIES)}"
            )
        if self.db_aurora_capacity == "provisioned":
            size = self.db_instance_class.rsplit(".", 1)[-1]
            if size in _AURORA_TOO_SMALL:
                raise SettingsError(
                    f"db_instance_class {self.db_instance_class!r}: Aurora MySQL runs on no "
                    "class smaller than db.t4g.medium (or set db_aurora_capacity to "
                    "'serverless-v2')"
                )
        else:
            self._check_serverless_capacity()
        if not 1 <= self.db_min_readers <= self.db_max_readers <= MAX_AURORA_READERS:
            raise SettingsError(
                f"db_min_readers is {self.db_min_readers} and db_max_readers "
                f"{self.db_max_readers}; allowed 1 <= db_min_readers <= db_max_readers <= "
                f"{MAX_AURORA_READERS} (the API reads from the readers)"
            )
        if not 10 <= self.db_reader_cpu_target_percent <= 90:
            raise SettingsError(
                f"db_reader_cpu_target_percent is {self.db_reader_cpu_target_percent}; "
                "allowed 10..90"
            )

    def _check_serverless_capacity(self) -> None:
        low, high = self.db_serverless_min_acu, self.db_serverless_max_acu
        in_steps = all(float(2 * value).is_integer() for value in (low, high))
        if not (in_steps and MIN_SERVERLESS_ACU <= low <= high <= MAX_SERVERLESS_ACU and high >= 1):
            raise SettingsError(
                f"db_serverless_min_acu is {low} and db_serverless_max_acu {high}; allowed "
                f"{MIN_SERVERLESS_ACU} <= min <= max <= {MAX_SERVERLESS_ACU}, max at least 1, "
                "in steps of 0.5 (a minimum of 0 would pause the database, and the API's first "
                "requests after a pause would time out)"
            )

    @property
    def uses_aurora(self) -> bool:
        """Whether the database is an Aurora cluster, whose reader endpoint the API reads."""
        return self.db_engine == "aurora-mysql"

    @property
    def scales_readers(self) -> bool:
        """Whether Application Auto Scaling may add Aurora readers beyond the template's."""
        return self.uses_aurora and self.db_max_readers > self.db_min_readers

    def _check_docs_cidrs(self) -> None:
        """CIDRs the web ACL's IP sets accept, and only when they restrict something."""
        _check_is_tuple("api_docs_allowed_cidrs", self.api_docs_allowed_cidrs)
        if self.api_docs_allowed_cidrs and self.api_docs_public:
            raise SettingsError(
                "api_docs_allowed_cidrs restricts nothing while api_docs_public is on: "
                "turn api_docs_public off to serve the docs to those CIDRs only"
            )
        for cidr in self.api_docs_allowed_cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except (TypeError, ValueError):
                raise SettingsError(
                    f"api_docs_allowed_cidrs: {cidr!r} is not a network in CIDR notation with "
                    "no host bits set (e.g. 203.0.113.0/24, 2001:db8::/32, 198.51.100.7/32)"
                ) from None
            if network.prefixlen == 0:
                raise SettingsError(
                    f"api_docs_allowed_cidrs: {cidr!r} is everyone (AWS WAF refuses /0); "
                    "set api_docs_public instead"
                )

    def _check_job_sources(self) -> None:
        """The job reads something, and only what its task role will be allowed to read."""
        _check_is_tuple("ghcn_sources", self.ghcn_sources)
        if not self.job_reads_raw_bucket and not self.ghcn_sources:
            raise SettingsError(
                "the job would read nothing: job_reads_raw_bucket is off and ghcn_sources is "
                f"empty (name at least one source, e.g. {GHCN_EXAMPLE_SOURCE})"
            )
        for source in self.ghcn_sources:
            if not isinstance(source, str) or not source.startswith("s3://"):
                raise SettingsError(
                    f"ghcn_sources: {source!r} is not an s3:// URI (e.g. {GHCN_EXAMPLE_SOURCE})"
                )
            if any(character.isspace() for character in source):
                raise SettingsError(f"ghcn_sources: {source!r} contains white space")
            bucket, _, key = source.removeprefix("s3://").partition("/")
            if bucket != GHCN_BUCKET:
                raise SettingsError(
                    f"ghcn_sources: {source!r} is not in NOAA's bucket {GHCN_BUCKET!r}, and the "
                    "job's task role may read only that bucket and the raw bucket "
                    f"(e.g. {GHCN_EXAMPLE_SOURCE})"
                )
            if not key:
                raise SettingsError(
                    f"ghcn_sources: {source!r} is the whole bucket, every format of GHCN-Daily "
                    f"at once; name a prefix or an object (e.g. {GHCN_EXAMPLE_SOURCE})"
                )

    def _check_job_selection(self) -> None:
        """The selection as `wxhub run` would accept it from its environment variables."""
        lists = (
            ("job_stations", self.job_stations, _STATION_PATTERN, _STATIONS_ALLOWED),
            ("job_country", self.job_country, _TWO_CAPITALS, "two capital letters each (US,CA)"),
            ("job_state", self.job_state, _TWO_CAPITALS, "two capital letters each (IL,IN)"),
        )
        for name, items, pattern, allowed in lists:
            _check_is_tuple(name, items)
            bad = [
                item for item in items if not isinstance(item, str) or not pattern.fullmatch(item)
            ]
            if bad:
                raise SettingsError(f"{name}: {', '.join(map(repr, bad))}; allowed: {allowed}")
        if self.job_bbox is not None:
            _check_bbox(self.job_bbox)

    @property
    def reads_ghcn_bucket(self) -> bool:
        """Whether any source of the job is in NOAA's GHCN-Daily bucket."""
        return any(
            source.removeprefix("s3://").partition("/")[0] == GHCN_BUCKET
            for source in self.ghcn_sources
        )

    @property
    def log_retention(self) -> logs.RetentionDays:
        """How long every log group of this environment keeps its events."""
        return logs.RetentionDays[LOG_RETENTION_NAMES[self.log_retention_days]]

    @property
    def api_docs_served(self) -> bool:
        """Whether the API serves Swagger UI and its OpenAPI document (WXHUB_API_DOCS): to
        everyone, or to the allowed CIDRs, the web ACL turning everyone else away."""
        return self.api_docs_public or bool(self.api_docs_allowed_cidrs)

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

    @property
    def migration_family(self) -> str:
        """The migration task's family (`wxhub migrate` with the master user's secret)."""
        return f"wxhub-{self.name}-migrate"


_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(EnvironmentSettings)
    if field.default is not dataclasses.MISSING
}


def _check_is_tuple(name: str, value: object) -> None:
    """A list setting given as one string would be read letter by letter."""
    if not isinstance(value, tuple):
        raise SettingsError(f"{name} is {value!r}; give a tuple, e.g. ({value!r},) for one item")


def _check_bbox(bbox: tuple[float, ...]) -> None:
    """Four finite numbers, each minimum at most its maximum, within the globe."""
    numbers = [v for v in bbox if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(bbox) != 4 or len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise SettingsError(f"job_bbox {bbox!r} is not four numbers {BBOX_FORMAT}")
    min_lon, min_lat, max_lon, max_lat = numbers
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise SettingsError(
            f"job_bbox {bbox!r}: longitudes must be within -180..180 and latitudes within "
            "-90..90, each minimum at most its maximum "
            "(e.g. (-91.6, 36.9, -87.0, 42.6) for Illinois)"
        )


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
        # Never a single task: one per AZ at least, as the database is Multi-AZ.
        api_min_tasks=2,
        api_max_tasks=4,
        api_docs_public=False,
        job_cpu=1024,
        job_memory_mib=2048,
        # No NAT gateway: every AWS API the tasks call has a VPC endpoint (ECR, Logs, Secrets
        # Manager; S3 through the gateway endpoint), so the tasks have no path to the internet.
        # A job reading NOAA's bucket then needs the stack in us-east-1 (a CloudFormation rule
        # refuses any other region; see network.py).
        nat_gateways=0,
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
    "jobMaxConcurrentShards": "job_max_concurrent_shards",
    "jobReadsRawBucket": "job_reads_raw_bucket",
    "ghcnSources": "ghcn_sources",
    "jobStations": "job_stations",
    "jobCountry": "job_country",
    "jobState": "job_state",
    "jobBbox": "job_bbox",
    "apiDocsCidrs": "api_docs_allowed_cidrs",
    "dbEngine": "db_engine",
    "dbInstanceClass": "db_instance_class",
    "dbAuroraCapacity": "db_aurora_capacity",
    "dbServerlessMinAcu": "db_serverless_min_acu",
    "dbServerlessMaxAcu": "db_serverless_max_acu",
    "dbMinReaders": "db_min_readers",
    "dbMaxReaders": "db_max_readers",
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
    as strings (lists comma-separated), values from cdk.json may be JSON numbers, booleans or
    lists; both are converted here.
    """
    base = settings_for(context.get("env"))
    overrides: dict[str, Any] = {}
    for key, field in CONTEXT_FIELDS.items():
        value = context.get(key)
        if value is None or value == "":
            continue
        convert = _CONTEXT_CONVERSIONS.get(key)
        overrides[field] = value if convert is None else convert(key, value)
    return dataclasses.replace(base, **overrides)


def _whole_number(key: str, value: Any) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{key} {value!r} is not a whole number") from None


def _number(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise SettingsError(f"{key} {value!r} is not a finite number")
    return number


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise SettingsError(f"{key} {value!r} is not true or false")
    return text == "true"


def _list(key: str, value: Any) -> tuple[str, ...]:
    """A comma-separated string (``IL,IN``) or a JSON list, without empty items."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(text for item in items if (text := str(item).strip()))


def _bbox(key: str, value: Any) -> tuple[float, ...]:
    """``MIN_LON,MIN_LAT,MAX_LON,MAX_LAT`` or a JSON list of four numbers; the range is
    checked with the other settings."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        return tuple(float(item) for item in items)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} {value!r} is not four numbers {BBOX_FORMAT}") from None


_CONTEXT_CONVERSIONS: dict[str, Callable[[str, Any], Any]] = {
    "jobShards": _whole_number,
    "jobMaxConcurrentShards": _whole_number,
    "jobReadsRawBucket": _flag,
    "ghcnSources": _list,
    "jobStations": _list,
    "jobCountry": _list,
    "jobState": _list,
    "jobBbox": _bbox,
    "apiDocsCidrs": _list,
    "dbServerlessMinAcu": _number,
    "dbServerlessMaxAcu": _number,
    "dbMinReaders": _whole_number,
    "dbMaxReaders": _whole_number,
}
