"""Object versions of S3 sources, so an unchanged object is skipped without being read.

One row per object URI: the ETag and size the listing gave when it was last read, and the
ledger file its content is. The next listing compares ETag and size and skips a match
before any GET; a new ETag is read, and skipped by content hash if the content is known.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "ingested_objects",
        sa.Column("source_uri_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_uri", sa.String(length=1024), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["ingested_files.id"],
            name=op.f("fk_ingested_objects_file_id_ingested_files"),
        ),
        sa.PrimaryKeyConstraint("source_uri_sha256", name=op.f("pk_ingested_objects")),
        comment="The object version (ETag, size) last read at each S3 URI, and its ledger file: "
        "an object listed with the same ETag and size is skipped without being read.",
        # MySQL commits DDL on its own: a run killed here must be able to finish it.
        if_not_exists=True,
        **MYSQL_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("ingested_objects")
