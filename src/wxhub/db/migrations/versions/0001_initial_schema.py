"""Initial schema: observations, yearly statistics, the ingestion ledger and run history.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types of this revision (a migration never imports the live schema).
STATION_ID = sa.String(20).with_variant(
    mysql.VARCHAR(20, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


# IF NOT EXISTS and the checks below: MySQL commits each DDL statement on its own, so a run
# killed half-way through this migration leaves some of it done and the revision unstamped;
# the next run must be able to finish it rather than trip over what already exists.


def upgrade() -> None:
    op.create_table(
        "weather_observations",
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("obs_date", sa.Date(), nullable=False),
        sa.Column("max_temp_tenths_c", sa.SmallInteger(), nullable=True),
        sa.Column("min_temp_tenths_c", sa.SmallInteger(), nullable=True),
        sa.Column("precipitation_tenths_mm", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint(
            "max_temp_tenths_c BETWEEN -900 AND 600",
            name=op.f("ck_weather_observations_max_temp_range"),
        ),
        sa.CheckConstraint(
            "min_temp_tenths_c BETWEEN -900 AND 600",
            name=op.f("ck_weather_observations_min_temp_range"),
        ),
        sa.CheckConstraint(
            "precipitation_tenths_mm BETWEEN 0 AND 20000",
            name=op.f("ck_weather_observations_precipitation_range"),
        ),
        sa.PrimaryKeyConstraint("station_id", "obs_date", name=op.f("pk_weather_observations")),
        comment="One row per station and day, values in integer tenths as NOAA publishes them.",
        sqlite_with_rowid=False,
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "weather_yearly_stats",
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("year", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("avg_max_temp_c", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("avg_min_temp_c", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("total_precipitation_cm", sa.Numeric(precision=9, scale=2), nullable=True),
        sa.Column("max_temp_days", sa.SmallInteger(), nullable=False),
        sa.Column("min_temp_days", sa.SmallInteger(), nullable=False),
        sa.Column("precipitation_days", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "year", name=op.f("pk_weather_yearly_stats")),
        comment="One row per station and year; a statistic with no contributing day is NULL.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("command", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        *(
            sa.Column(name, sa.Integer(), server_default="0", nullable=False)
            for name in ("files_seen", "files_skipped", "files_loaded", "files_failed")
        ),
        *(
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
            for name in (
                "records_read",
                "records_inserted",
                "records_updated",
                "records_unchanged",
                "records_rejected",
            )
        ),
        sa.Column("station_years_aggregated", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        comment="One row per ingest, aggregate or run command: its outcome and counts.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "ingested_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_uri", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "records_read",
                "records_inserted",
                "records_updated",
                "records_unchanged",
                "records_rejected",
            )
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["job_runs.id"], name=op.f("fk_ingested_files_run_id_job_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingested_files")),
        sa.UniqueConstraint(
            "station_id", "content_sha256", name=op.f("uq_ingested_files_station_id_content_sha256")
        ),
        comment="Ledger of loaded files, written in the same transaction as their rows.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "ingestion_rejects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("line_text", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["ingested_files.id"],
            name=op.f("fk_ingestion_rejects_file_id_ingested_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_rejects")),
        comment="Lines refused by the parser, with the reason, so nothing is silently lost.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("ingestion_rejects")}
    if "ix_ingestion_rejects_file_id_line_no" not in indexes:
        op.create_index(
            op.f("ix_ingestion_rejects_file_id_line_no"),
            "ingestion_rejects",
            ["file_id", "line_no"],
        )
    op.create_table(
        "aggregation_pending",
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("year", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("station_id", "year", name=op.f("pk_aggregation_pending")),
        comment="Station-years changed since their statistics were last computed.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("aggregation_pending")
    # Its index goes with the table: InnoDB refuses to drop an index a foreign key uses.
    op.drop_table("ingestion_rejects")
    op.drop_table("ingested_files")
    op.drop_table("job_runs")
    op.drop_table("weather_yearly_stats")
    op.drop_table("weather_observations")
