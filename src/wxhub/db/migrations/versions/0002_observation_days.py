"""Count every stored day per station-year, for the API's page counts and totals.

Existing statistics get 0 here and every station-year is queued, so the next run's
aggregation (or `wxhub aggregate`) fills the counts in: one set-based pass, instead of a
per-row UPDATE that MySQL would answer by scanning each station's days once per year.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# IF NOT EXISTS and the checks below: MySQL commits each DDL statement on its own, so a run
# killed half-way through this migration leaves some of it done and the revision unstamped;
# the next run must be able to finish it rather than trip over what already exists.


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("weather_yearly_stats")}
    if "observation_days" not in columns:
        with op.batch_alter_table("weather_yearly_stats") as batch:
            batch.add_column(
                sa.Column("observation_days", sa.SmallInteger(), server_default="0", nullable=False)
            )
    stats = sa.table("weather_yearly_stats", sa.column("station_id"), sa.column("year"))
    pending = sa.table("aggregation_pending", sa.column("station_id"), sa.column("year"))
    queued = sa.select(pending.c.station_id).where(
        pending.c.station_id == stats.c.station_id, pending.c.year == stats.c.year
    )
    op.execute(
        pending.insert().from_select(
            ["station_id", "year"],
            sa.select(stats.c.station_id, stats.c.year).where(~queued.exists()),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("weather_yearly_stats") as batch:
        batch.drop_column("observation_days")
