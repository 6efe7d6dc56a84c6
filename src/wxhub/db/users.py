"""The database users of the job and the API, kept by ``wxhub migrate`` (MySQL/MariaDB only).

Three roles, so that a leaked API credential cannot change data and a leaked job credential
cannot change the schema or the users:

* the master user (the RDS one) runs ``wxhub migrate`` and nothing else, as a one-off task;
* the job user reads and writes the rows of wxhub's tables (``SELECT, INSERT, UPDATE,
  DELETE``: ``LOAD DATA LOCAL INFILE`` needs only ``INSERT`` on its table, the file being the
  client's), makes its own staging tables (``CREATE TEMPORARY TABLES``), and reads the schema
  revision, which it checks before every run; no DDL, no ``FILE``, no user management;
* the API user reads (``SELECT``) the tables it serves, and nothing of the ingestion
  ledger (files, objects, rejects, runs, the aggregation queue).

``wxhub migrate`` creates each user named in the environment (``WXHUB_DB_JOB_USER`` and
``WXHUB_DB_JOB_PASSWORD``, ``WXHUB_DB_API_USER`` and ``WXHUB_DB_API_PASSWORD``), sets its
password (so a rotated secret takes effect at the next migration), grants what its role needs
and revokes any other privilege it holds on wxhub's database: run twice, it changes nothing.
Grants are added before anything is revoked, so a user that keeps a privilege never loses it
for a moment while a migration runs beside the live API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection, Engine, TextClause, text

from wxhub.db.migrate import VERSION_TABLE
from wxhub.db.schema import (
    data_version,
    metadata,
    station_summary,
    stations,
    weather_observations,
    weather_yearly_stats,
)

log = logging.getLogger(__name__)

Role = Literal["job", "api"]
# Any host: the tasks' addresses change with every start; the security groups decide who
# reaches the database at all.
USER_HOST = "%"
# MySQL 8's limit is 32 characters; letters, digits and _ need no quoting anywhere.
_USER_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")

ROW_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# What the API reads: the data it serves, the data version (ETags) and the schema revision
# (/readyz). Not job_runs, ingested_files, ingested_objects, ingested_station_digests,
# ingestion_rejects nor aggregation_pending.
API_TABLES = tuple(
    t.name
    for t in (weather_observations, weather_yearly_stats, station_summary, stations, data_version)
)


@dataclass(frozen=True)
class DbUser:
    """One application user: its role, name and password (never logged, never in repr)."""

    role: Role
    name: str
    password: str = field(repr=False)

    def table_privileges(self) -> dict[str, tuple[str, ...]]:
        """Table -> the privileges this role holds on it (and on no other table)."""
        wanted: dict[str, tuple[str, ...]]
        if self.role == "api":
            wanted = dict.fromkeys(API_TABLES, ("SELECT",))
        else:
            wanted = dict.fromkeys(metadata.tables, ROW_PRIVILEGES)
        return {**wanted, VERSION_TABLE: ("SELECT",)}

    def database_privileges(self) -> tuple[str, ...]:
        """What this role holds on the database as a whole (its staging tables)."""
        return ("CREATE TEMPORARY TABLES",) if self.role == "job" else ()


_SETTINGS: dict[Role, tuple[str, str]] = {
    "job": ("WXHUB_DB_JOB_USER", "WXHUB_DB_JOB_PASSWORD"),
    "api": ("WXHUB_DB_API_USER", "WXHUB_DB_API_PASSWORD"),
}


def users_from_env(env: Mapping[str, str], master_user: str | None) -> tuple[DbUser, ...]:
    """The users to keep, from the environment; none when their variables are unset.

    Raises ValueError (one line naming the variable) for a user without a password, an
    unusable name, or a name shared with another role or with the user migrate logs in as
    (whose password and privileges it must never touch).
    """
    users: list[DbUser] = []
    for role, (name_setting, password_setting) in _SETTINGS.items():
        name = env.get(name_setting, "").strip()
        password = env.get(password_setting, "")
        if not name and not password:
            continue
        if not name or not password:
            raise ValueError(f"{name_setting} and {password_setting} must be set together")
        if not _USER_NAME.fullmatch(name):
            raise ValueError(
                f"{name_setting}={name!r} is not a user name of 1 to 32 letters, digits or _"
            )
        if name == master_user:
            raise ValueError(
                f"{name_setting}={name!r} is the user wxhub migrate logs in as (DB_USER): "
                f"the {role} user must be a user of its own"
            )
        if any(user.name == name for user in users):
            raise ValueError(f"{name_setting}={name!r} is also the job user: give each its own")
        users.append(DbUser(role, name, password))
    return tuple(users)


def ensure_users(engine: Engine, users: tuple[DbUser, ...]) -> None:
    """Create or update ``users`` and their privileges on the engine's database."""
    if not users:
        return
    if engine.dialect.name not in ("mysql", "mariadb"):
        log.info(
            "database users are a MySQL matter: %s ignored on %s",
            ", ".join(user.name for user in users),
            engine.dialect.name,
        )
        return
    with engine.begin() as conn:  # each statement commits on its own in MySQL anyway
        database = conn.execute(text("SELECT DATABASE()")).scalar_one()
        for user in users:
            _ensure_user(conn, str(database), user)


def _ensure_user(conn: Connection, database: str, user: DbUser) -> None:
    account = {"name": user.name, "host": USER_HOST}
    conn.execute(
        text("CREATE USER IF NOT EXISTS :name@:host IDENTIFIED BY :password"),
        {**account, "password": user.password},
    )
    conn.execute(
        text("ALTER USER :name@:host IDENTIFIED BY :password"),
        {**account, "password": user.password},
    )
    quote = conn.dialect.identifier_preparer.quote_identifier
    schema = quote(database)
    wanted = {
        (table, privilege)
        for table, privileges in user.table_privileges().items()
        for privilege in privileges
    }
    for table, privileges in user.table_privileges().items():
        conn.execute(
            text(f"GRANT {', '.join(privileges)} ON {schema}.{quote(table)} TO :name@:host"),
            account,
        )
    if user.database_privileges():
        conn.execute(
            text(f"GRANT {', '.join(user.database_privileges())} ON {schema}.* TO :name@:host"),
            account,
        )
    for table, privilege in _held(conn, _TABLE_PRIVILEGES_HELD, database, user):
        if (table, privilege) not in wanted:
            conn.execute(
                text(f"REVOKE {privilege} ON {schema}.{quote(table)} FROM :name@:host"), account
            )
    for _, privilege in _held(conn, _SCHEMA_PRIVILEGES_HELD, database, user):
        if privilege not in user.database_privileges():
            conn.execute(text(f"REVOKE {privilege} ON {schema}.* FROM :name@:host"), account)
    log.info(
        "database user %s (%s): %d privileges on %d tables of %s",
        user.name,
        user.role,
        len(wanted),
        len(user.table_privileges()),
        database,
        extra={"event": "db_user", "db_user": user.name, "role": user.role},
    )


_TABLE_PRIVILEGES_HELD = text(
    "SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
    "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
)
_SCHEMA_PRIVILEGES_HELD = text(
    "SELECT '', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
    "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database"
)
# A privilege name the server reports, before it goes into a REVOKE: words and spaces only.
_PRIVILEGE = re.compile(r"[A-Z]+( [A-Z]+)*")


def _held(
    conn: Connection, query: TextClause, database: str, user: DbUser
) -> list[tuple[str, str]]:
    """(table or '', privilege) that ``user`` holds on ``database``, per information_schema."""
    rows = conn.execute(query, {"grantee": f"'{user.name}'@'{USER_HOST}'", "database": database})
    held = [(str(table), str(privilege)) for table, privilege in rows]
    return [(table, privilege) for table, privilege in held if _PRIVILEGE.fullmatch(privilege)]
