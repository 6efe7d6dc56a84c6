"""Per-station digests of big files, so that reloading a nearly unchanged by-year file parses
and compares only the stations whose lines changed.

One row per (ledger subject, station): the number of the station's lines in the file at its
last load and a 64-bit digest of them (see ``wxhub.ingestion.digests``). Written in the same
transaction as the file's ledger entry. An empty table is the state before any big file was
loaded: the first reload after this migration compares every station, as before, and records
the digests.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATION_ID = sa.String(20).with_variant(
    mysql.VARCHAR(20, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "ingested_station_digests",
        sa.Column("subject", STATION_ID, nullable=False),
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("digest", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "station_id", name=op.f("pk_ingested_station_digests")),
        comment="Per station, a digest of a big file's lines at its last load: a reload parses "
        "and compares only the stations whose lines changed (see wxhub.ingestion.digests).",
        # MySQL commits DDL on its own: a run killed here must be able to finish it.
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("ingested_station_digests")
