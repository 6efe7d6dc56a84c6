"""Bring a database's schema up to date with the Alembic migrations shipped in the package.

Every command calls :func:`upgrade` first. When the database is already at the newest
revision (every night but the first), that costs one query and Alembic is not even imported:
the nightly re-run with nothing to do stays well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, String, column, inspect, select, table

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration in migrations/versions; tests/db/test_migrations.py checks they agree.
HEAD_REVISION = "0006"
VERSION_TABLE = "alembic_version"


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
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return before, HEAD_REVISION
