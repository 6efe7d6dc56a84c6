"""A data version, bumped by every transaction that changes what the API serves.

The API derives its ETags from it and keys its caches on it: one primary-key read per
request tells whether anything changed since a client's last visit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


# IF NOT EXISTS and the checks below: MySQL commits each DDL statement on its own, so a run
# killed half-way through this migration leaves some of it done and the revision unstamped;
# the next run must be able to finish it rather than trip over what already exists.


def upgrade() -> None:
    table = op.create_table(
        "data_version",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
        comment="One row: a counter bumped by every transaction that changes served data.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    rows = op.get_bind().execute(sa.select(sa.func.count()).select_from(table)).scalar()
    if not rows:
        op.bulk_insert(table, [{"id": 1, "version": 1}])


def downgrade() -> None:
    op.drop_table("data_version")
