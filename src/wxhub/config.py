"""Every setting of wxhub in one typed object, read from the environment.

The database is chosen in this order, so that the same image runs on a laptop, in CI and on
ECS without code changes:

1. ``--database-url`` on the command line (passed in as ``database_url_override``);
2. ``DATABASE_URL``, any SQLAlchemy URL;
3. ``DB_SECRET_ARN``: the Secrets Manager secret that RDS generates, fetched at start-up; its
   fields ``host``, ``port``, ``username``, ``password``, ``dbname`` fill in whichever of the
   ``DB_*`` variables below are not set (a variable that is set wins over the secret);
4. ``DB_HOST`` (+ ``DB_PORT``, ``DB_USER``, ``DB_PASSWORD``, ``DB_NAME``): the way ECS injects
   the fields of that same secret; they make a MySQL URL;
5. otherwise the embedded default, a SQLite file ``wxhub.db`` in the working directory.

The API may read from a second database, a read replica of the first (an Aurora reader
endpoint, an RDS read replica): ``DATABASE_READ_URL``, any SQLAlchemy URL, or ``DB_READ_HOST``,
the host of a copy of the database above reached with everything else of its URL (port, user,
password, database name) and the same TLS settings. The job and ``wxhub migrate`` never use it:
they write. Without either the API reads from the one database, as it always has.

Every other setting may also come from SSM Parameter Store: with ``WXHUB_SSM_PREFIX`` set,
the parameters directly under that path, named like the variables (``/wxhub/prod/WXHUB_API_DOCS``),
are read at start-up; a variable set in the environment wins over its parameter.

A password never leaves this module in clear text: :attr:`Settings.database_url_safe` is the
form used in logs and errors, and :func:`secrets_to_redact` feeds the log filter.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from wxhub.db.tls import DbTls, resolve_tls
from wxhub.db.users import DbUser, users_from_env

DEFAULT_SQLITE_FILE = "wxhub.db"
DEFAULT_MYSQL_PORT = 3306
DEFAULT_DB_NAME = "wxhub"

LogFormat = Literal["auto", "json", "text"]
_LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "text")
Metrics = Literal["off", "emf"]
_METRICS: tuple[Metrics, ...] = ("off", "emf")
DEFAULT_METRICS_NAMESPACE = "wxhub"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting, never a secret."""


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    database_url: URL
    database_url_source: str
    # The API's read-only copy of the database (DATABASE_READ_URL, DB_READ_HOST); None: the
    # API reads from database_url like everything else.
    database_read_url: URL | None = None
    database_read_url_source: str | None = None
    log_format: LogFormat = "auto"
    # Parser processes beside the loader; None lets the job decide (one on a multi-core host).
    parse_workers: int | None = None
    # Serve /api/openapi.json and Swagger UI at /api/docs (off for private deployments).
    api_docs: bool = True
    # Answers each API worker keeps per data version (MiB); 0 turns the cache off.
    api_cache_mb: int = 32
    # How long the job keeps retrying a step whose database connection failed (seconds).
    db_retry_s: float = 120.0
    # Origins allowed to read the API from a browser (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # CloudWatch Embedded Metric Format in the JSON log lines ("emf"), or none ("off").
    metrics: Metrics = "off"
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    # TLS of the MySQL connections (WXHUB_DB_TLS, WXHUB_DB_CA_FILE, the URL's ssl_* arguments).
    db_tls: DbTls = field(default_factory=DbTls)
    # The same, decided for the read URL's host (an Aurora reader endpoint is an RDS host).
    db_read_tls: DbTls | None = None
    # The job and API users `wxhub migrate` keeps (WXHUB_DB_JOB_USER, WXHUB_DB_API_USER, ...).
    db_users: tuple[DbUser, ...] = ()
    extra_secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def database_url_safe(self) -> str:
        """The URL with its password masked: the only form that may be logged."""
        return self.database_url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    @property
    def api_database_url(self) -> URL:
        """What the API reads from: the read URL when one is set, else the database itself."""
        return self.database_read_url or self.database_url

    @property
    def api_db_tls(self) -> DbTls:
        """The TLS of the API's connections, decided for the host it reads from."""
        if self.database_read_url is not None and self.db_read_tls is not None:
            return self.db_read_tls
        return self.db_tls

    @property
    def api_database_url_safe(self) -> str:
        """The API's URL with its password masked."""
        return self.api_database_url.render_as_string(hide_password=True)

    def secrets_to_redact(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or an error message."""
        read_password = self.database_read_url.password if self.database_read_url else None
        secrets = [s for s in (self.database_url.password, read_password, *self.extra_secrets) if s]
        return tuple(dict.fromkeys(str(s) for s in secrets))

    def __repr__(self) -> str:  # keep the password out of tracebacks and debug output
        read = (
            f"database_read_url={self.api_database_url_safe!r}, "
            if self.database_read_url is not None
            else ""
        )
        return (
            f"Settings(database_url={self.database_url_safe!r}, "
            f"database_url_source={self.database_url_source!r}, {read}"
            f"log_format={self.log_format!r}, parse_workers={self.parse_workers!r})"
        )


def load_settings(
    environ: Mapping[str, str] | None = None,
    database_url_override: str | None = None,
) -> Settings:
    """Read the settings from ``environ`` (default: the process environment).

    With ``WXHUB_SSM_PREFIX`` or ``DB_SECRET_ARN`` set this calls AWS; a failure there is a
    :class:`ConfigError` naming the setting (and the ARN or path, never a secret value).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    extra_secrets: list[str] = []
    if env.get("WXHUB_SSM_PREFIX", "").strip():
        env = _with_ssm_parameters(env, extra_secrets)
    url, source = _resolve_database_url(env, database_url_override, extra_secrets)
    read_url, read_source = _resolve_read_url(env, url, source)
    log_format = env.get("WXHUB_LOG_FORMAT", "auto").strip().lower() or "auto"
    if log_format not in _LOG_FORMATS:
        raise ConfigError(
            f"WXHUB_LOG_FORMAT={log_format!r} is not one of {', '.join(_LOG_FORMATS)}"
        )
    return Settings(
        database_url=url,
        database_url_source=source,
        database_read_url=read_url,
        database_read_url_source=read_source,
        log_format=log_format,
        api_docs=_bool_setting(env, "WXHUB_API_DOCS", default=True),
        api_cache_mb=_int_setting(env, "WXHUB_API_CACHE_MB", default=32, minimum=0),
        cors_origins=_origins_setting(env, "WXHUB_CORS_ORIGINS"),
        db_retry_s=float(
            _int_setting(env, "WXHUB_DB_RETRY_S", default=120, minimum=0, unit="seconds")
        ),
        parse_workers=(
            _int_setting(env, "WXHUB_PARSE_WORKERS", default=0, minimum=0)
            if env.get("WXHUB_PARSE_WORKERS", "").strip()
            else None
        ),
        metrics=_choice_setting(env, "WXHUB_METRICS", _METRICS, default="off"),
        metrics_namespace=(
            env.get("WXHUB_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE
        ),
        db_tls=_tls_setting(env, url),
        db_read_tls=None if read_url is None else _tls_setting(env, read_url),
        db_users=_users_setting(env, url, extra_secrets),
        extra_secrets=tuple(extra_secrets),
    )


def _users_setting(
    env: Mapping[str, str], url: URL, extra_secrets: list[str]
) -> tuple[DbUser, ...]:
    try:
        users = users_from_env(env, url.username)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    extra_secrets.extend(user.password for user in users)
    return users


def _tls_setting(env: Mapping[str, str], url: URL) -> DbTls:
    try:
        return resolve_tls(env, url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _with_ssm_parameters(env: Mapping[str, str], extra_secrets: list[str]) -> dict[str, str]:
    """The environment over the SSM parameters: a variable that is set wins."""
    from wxhub import aws  # noqa: PLC0415  (AWS only when asked for)

    prefix = env["WXHUB_SSM_PREFIX"].strip()
    if not prefix.startswith("/"):
        raise ConfigError(
            f"WXHUB_SSM_PREFIX={prefix!r} is not a parameter path (e.g. /wxhub/prod/)"
        )
    try:
        parameters = aws.fetch_parameters(prefix, aws.region_from(env))
    except aws.AwsError as exc:
        raise ConfigError(
            f"WXHUB_SSM_PREFIX={prefix!r}: cannot read the parameters: {exc}"
        ) from None
    extra_secrets.extend(parameters.secure_values)
    merged = {
        name: value for name, value in parameters.values.items() if name != "WXHUB_SSM_PREFIX"
    }
    merged.update((name, value) for name, value in env.items() if value.strip())
    return merged


def _resolve_database_url(
    env: Mapping[str, str], override: str | None, extra_secrets: list[str]
) -> tuple[URL, str]:
    if override:
        return _parse_url(override, "--database-url"), "--database-url"
    if env.get("DATABASE_URL"):
        return _parse_url(env["DATABASE_URL"], "DATABASE_URL"), "DATABASE_URL"
    if env.get("DB_SECRET_ARN", "").strip():
        parts = _parts_from_secret(env, extra_secrets)
        return _url_from_parts(parts), "DB_SECRET_ARN (DB_* variables that are set win)"
    if env.get("DB_HOST"):
        return _url_from_parts(env), "DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME"
    return URL.create("sqlite", database=DEFAULT_SQLITE_FILE), "default"


def _resolve_read_url(
    env: Mapping[str, str], write_url: URL, write_source: str
) -> tuple[URL | None, str | None]:
    """The API's read URL: ``DATABASE_READ_URL`` as given, or the write URL on ``DB_READ_HOST``.

    A reader must be a copy of the writer, so it is the same kind of database: a SQLite reader
    of a MySQL writer (or the other way round) is a mistake, said at start-up. ``DB_READ_HOST``
    on SQLite names nothing (a file has no host): an error naming the variable too.
    """
    raw_url = env.get("DATABASE_READ_URL", "").strip()
    read_host = env.get("DB_READ_HOST", "").strip()
    writer_is_sqlite = write_url.get_backend_name() == "sqlite"
    if raw_url:
        url = _parse_url(raw_url, "DATABASE_READ_URL")
        if (url.get_backend_name() == "sqlite") != writer_is_sqlite:
            raise ConfigError(
                f"DATABASE_READ_URL is a {url.get_backend_name()} URL but the database "
                f"({write_source}) is {write_url.get_backend_name()}: the reader must be a copy "
                "of the same database"
            )
        return url, "DATABASE_READ_URL"
    if not read_host:
        return None, None
    if writer_is_sqlite:
        raise ConfigError(
            f"DB_READ_HOST={read_host!r} needs a MySQL database to be a replica of, but the "
            f"database is a SQLite file ({write_source}): set DB_HOST (or DATABASE_URL, "
            "DB_SECRET_ARN) too, or use DATABASE_READ_URL"
        )
    return write_url.set(host=read_host), f"DB_READ_HOST with the other parts of {write_source}"


def _parse_url(raw: str, setting: str) -> URL:
    # make_url's own error repeats the whole string, password included: say it without it.
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"{setting} is not a valid SQLAlchemy URL (expected e.g. "
            "'sqlite:///wxhub.db' or 'mysql+pymysql://user:password@host:3306/wxhub')"
        ) from None
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb") and url.get_driver_name() in ("mysqldb", "mysql", "mariadb"):
        # A bare mysql:// would pick mysqlclient, which needs a compiler; PyMySQL is installed.
        url = url.set(drivername=f"{backend}+pymysql")
    if url.get_backend_name() not in ("sqlite", "mysql", "mariadb"):
        raise ConfigError(
            f"{setting} names the {url.get_backend_name()!r} backend; wxhub supports "
            "sqlite and mysql/mariadb"
        )
    return url


def _parts_from_secret(env: Mapping[str, str], extra_secrets: list[str]) -> dict[str, str]:
    """The DB_* parts: the secret's fields, under the variables that are set."""
    from wxhub import aws  # noqa: PLC0415  (AWS only when asked for)

    arn = env["DB_SECRET_ARN"].strip()
    try:
        secret = aws.fetch_database_secret(arn, aws.region_from(env))
    except aws.AwsError as exc:
        raise ConfigError(f"DB_SECRET_ARN={arn}: cannot read the database secret: {exc}") from None
    if secret.password:
        extra_secrets.append(secret.password)
    from_secret = {
        "DB_HOST": secret.host,
        "DB_PORT": secret.port,
        "DB_USER": secret.username,
        "DB_PASSWORD": secret.password,
        "DB_NAME": secret.dbname,
    }
    parts = {name: value for name, value in from_secret.items() if value}
    parts.update((name, env[name]) for name in from_secret if env.get(name, "").strip())
    return parts


def _url_from_parts(env: Mapping[str, str]) -> URL:
    return URL.create(
        "mysql+pymysql",
        username=env.get("DB_USER") or None,
        password=env.get("DB_PASSWORD") or None,
        host=env["DB_HOST"].strip(),
        port=_int_setting(env, "DB_PORT", default=DEFAULT_MYSQL_PORT, minimum=1),
        database=env.get("DB_NAME") or DEFAULT_DB_NAME,
        query={"charset": "utf8mb4"},
    )


def _choice_setting(
    env: Mapping[str, str], name: str, choices: tuple[Metrics, ...], *, default: Metrics
) -> Metrics:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    for choice in choices:
        if raw == choice:
            return choice
    raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")


def _origins_setting(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated origins (``https://example.org``), or ``*`` for any."""
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise ConfigError(
                f"{name}: {origin!r} is not an origin (scheme://host[:port], e.g. "
                "'https://example.org'), nor '*'"
            )
    return origins


def _bool_setting(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not one of on/off, true/false, yes/no, 1/0")


def _int_setting(
    env: Mapping[str, str], name: str, *, default: int, minimum: int, unit: str = ""
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    # One message for every bad value, saying what the setting takes.
    invalid = ConfigError(
        f"{name}={raw!r} is not a whole number{f' of {unit}' if unit else ''}, {minimum} or more"
    )
    try:
        value = int(raw)
    except ValueError:
        raise invalid from None
    if value < minimum:
        raise invalid
    return value
