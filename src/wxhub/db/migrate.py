"""Bring a database's schema up to date with the Alembic migrations shipped in the package.

Every command calls :func:`upgrade` first. When the database is already at the newest
revision (every night but the first), that costs one query and Alembic is not even imported:
the nightly re-run with nothing to do stays well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, String, column, inspect, select, table
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration in migrations/versions; tests/db/test_migrations.py checks they agree.
HEAD_REVISION = "0007"
VERSION_TABLE = "alembic_version"
# MySQL's "you may not": on a table, a column, the database, a global privilege.
_PRIVILEGE_ERRORS = (1142, 1143, 1044, 1227)


class SchemaNotMigrated(Exception):  # noqa: N818  (reads as the condition it names)
    """The schema is behind this wxhub and the database user may not migrate it (the job's
    and the API's users cannot, by design: wxhub.db.users); the message says what to run."""


def alembic_config() -> Config:
    """An Alembic configuration that needs no alembic.ini (works from an installed wheel)."""
    from alembic.config import Config  # noqa: PLC0415  (lazy: see the module docstring)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        version_num = column("version_num", String)
        revision = conn.execute(select(version_num).select_from(table(VERSION_TABLE))).scalar()
    return None if revision is None else str(revision)


def head_revision() -> str | None:
    """The newest revision among the migration scripts (reads them: slower than HEAD_REVISION)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to the newest revision; returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != HEAD_REVISION:
        from alembic import command  # noqa: PLC0415

        config = alembic_config()
        try:
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except DBAPIError as exc:
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            if code not in _PRIVILEGE_ERRORS:
                raise
            raise SchemaNotMigrated(
                f"the schema is at revision {before or '(none: an empty database)'} and this "
                f"wxhub needs {HEAD_REVISION}, which the database user "
                f"{engine.url.username or '(default)'} may not make ({exc.orig}): run "
                "`wxhub migrate` as the master user first (on AWS, the migration task: "
                ".github/scripts/run-migrations)"
            ) from exc
    return before, HEAD_REVISION
