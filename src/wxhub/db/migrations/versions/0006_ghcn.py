"""GHCN-Daily: station metadata, and the ledger's counts of values that were not loaded.

``stations`` holds NOAA's ``ghcnd-stations.txt`` (one row per station, joined to the data at
query time). The ledger and the run history gain the values that NOAA's quality control
flagged (not loaded; per flag letter as JSON) and the values of other elements (counted,
not stored).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATION_ID = sa.String(20).with_variant(
    mysql.VARCHAR(20, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _new_counts(count: Any) -> list[sa.Column[Any]]:
    return [
        sa.Column("values_qc_removed", count, nullable=False, server_default="0"),
        sa.Column("qc_removed_by_flag", sa.String(255), nullable=False, server_default="{}"),
        sa.Column("values_other_elements", count, nullable=False, server_default="0"),
    ]


NEW_COUNTS = {"ingested_files": sa.Integer, "job_runs": sa.BigInteger}


# Every step checks first: MySQL commits DDL statement by statement, so a run killed here
# must be able to finish this migration on its next start.
def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("latitude", sa.Numeric(7, 4), nullable=False),
        sa.Column("longitude", sa.Numeric(8, 4), nullable=False),
        sa.Column("elevation_m", sa.Numeric(6, 1), nullable=True),
        sa.Column("state", sa.String(2), nullable=True),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("gsn_flag", sa.String(3), nullable=True),
        sa.Column("hcn_crn_flag", sa.String(3), nullable=True),
        sa.Column("wmo_id", sa.String(5), nullable=True),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_stations")),
        comment="Station metadata from NOAA's ghcnd-stations.txt; joined to the data at query "
        "time.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    inspector = sa.inspect(op.get_bind())
    indexes = {index["name"] for index in inspector.get_indexes("stations")}
    for column in ("state", "country_code"):
        name = op.f(f"ix_stations_{column}_station_id")
        if name not in indexes:
            op.create_index(name, "stations", [column, "station_id"])
    for table, count in NEW_COUNTS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for new in _new_counts(count()):
            if new.name not in present:
                with op.batch_alter_table(table) as batch:
                    batch.add_column(new)


def downgrade() -> None:
    for table, count in NEW_COUNTS.items():
        with op.batch_alter_table(table) as batch:
            for column in _new_counts(count()):
                batch.drop_column(column.name)
    op.drop_table("stations")
