"""A summary row per station (first and last day, number of days), kept by the aggregation.

The station list read the statistics of every station-year and sought the first and last day
of each station on every request (about 6 ms, growing with the station-years); it now reads
one small table. Filled here from the data already loaded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATION_ID = sa.String(20).with_variant(
    mysql.VARCHAR(20, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


# IF NOT EXISTS and delete-then-insert: MySQL commits DDL on its own, so a run killed here
# must be able to finish this migration on its next start.
def upgrade() -> None:
    op.create_table(
        "station_summary",
        sa.Column("station_id", STATION_ID, nullable=False),
        sa.Column("first_obs_date", sa.Date(), nullable=False),
        sa.Column("last_obs_date", sa.Date(), nullable=False),
        sa.Column("observation_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_summary")),
        comment="One row per station, kept by the aggregation: the station list reads it alone.",
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )
    obs = sa.table("weather_observations", sa.column("station_id"), sa.column("obs_date"))
    stats = sa.table("weather_yearly_stats", sa.column("station_id"), sa.column("observation_days"))
    per_station = (
        sa.select(stats.c.station_id, sa.func.sum(stats.c.observation_days).label("days"))
        .group_by(stats.c.station_id)
        .subquery("per_station")
    )

    def day(order: Any) -> Any:
        return (
            sa.select(obs.c.obs_date)
            .where(obs.c.station_id == per_station.c.station_id)
            .order_by(order)
            .limit(1)
            .scalar_subquery()
        )

    op.execute(sa.delete(sa.table("station_summary")))
    op.execute(
        sa.insert(
            sa.table(
                "station_summary",
                sa.column("station_id"),
                sa.column("first_obs_date"),
                sa.column("last_obs_date"),
                sa.column("observation_days"),
            )
        ).from_select(
            ["station_id", "first_obs_date", "last_obs_date", "observation_days"],
            sa.select(
                per_station.c.station_id,
                day(obs.c.obs_date),
                day(obs.c.obs_date.desc()),
                per_station.c.days,
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("station_summary")
