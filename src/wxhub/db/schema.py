"""The tables of wxhub, declared once; every other module and every migration imports them.

Measurements are stored exactly as NOAA publishes them, as integer tenths (2-byte SMALLINT),
never as floats: sums and averages computed from them are then exact on every backend, and a
row costs a fraction of the space of DECIMAL or DOUBLE columns. Missing values (``-9999`` in
the files) are NULL. See docs/data-model.md for the reasoning behind each choice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from wxhub.domain import (
    PRECIPITATION_TENTHS_MM_MAX,
    PRECIPITATION_TENTHS_MM_MIN,
    STATION_ID_MAX_LENGTH,
    TEMP_TENTHS_C_MAX,
    TEMP_TENTHS_C_MIN,
)

# Names for constraints, so migrations are stable and identical on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ASCII with binary collation on MySQL/MariaDB: one byte a character in the key, and
# 'usc00110072' differs from 'USC00110072' there exactly as it does on SQLite.
StationId = String(STATION_ID_MAX_LENGTH).with_variant(
    mysql.VARCHAR(STATION_ID_MAX_LENGTH, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
# Every MySQL table in InnoDB and utf8mb4, whatever the server's defaults.
_MYSQL_TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

weather_observations = Table(
    "weather_observations",
    metadata,
    Column("station_id", StationId, primary_key=True),
    Column("obs_date", Date, primary_key=True),
    Column("max_temp_tenths_c", SmallInteger, nullable=True),
    Column("min_temp_tenths_c", SmallInteger, nullable=True),
    Column("precipitation_tenths_mm", SmallInteger, nullable=True),
    CheckConstraint(
        f"max_temp_tenths_c BETWEEN {TEMP_TENTHS_C_MIN} AND {TEMP_TENTHS_C_MAX}",
        name="max_temp_range",
    ),
    CheckConstraint(
        f"min_temp_tenths_c BETWEEN {TEMP_TENTHS_C_MIN} AND {TEMP_TENTHS_C_MAX}",
        name="min_temp_range",
    ),
    CheckConstraint(
        "precipitation_tenths_mm BETWEEN "
        f"{PRECIPITATION_TENTHS_MM_MIN} AND {PRECIPITATION_TENTHS_MM_MAX}",
        name="precipitation_range",
    ),
    comment="One row per station and day, values in integer tenths as NOAA publishes them.",
    # Clustered on the key, like InnoDB: compact, and a station's days are stored together.
    sqlite_with_rowid=False,
    **_MYSQL_TABLE_OPTIONS,
)

weather_yearly_stats = Table(
    "weather_yearly_stats",
    metadata,
    Column("station_id", StationId, primary_key=True),
    Column("year", SmallInteger, primary_key=True, autoincrement=False),
    # Rounded half away from zero to 0.01 with integer arithmetic, so every backend stores
    # the same decimal (a float AVG rounds .xx5 differently on SQLite and MySQL).
    Column("avg_max_temp_c", Numeric(5, 2), nullable=True),
    Column("avg_min_temp_c", Numeric(5, 2), nullable=True),
    # Exact: the sum of tenths of a millimetre divided by 100.
    Column("total_precipitation_cm", Numeric(9, 2), nullable=True),
    Column("max_temp_days", SmallInteger, nullable=False),
    Column("min_temp_days", SmallInteger, nullable=False),
    Column("precipitation_days", SmallInteger, nullable=False),
    # Every stored day of the year, even one with all three values missing: the API's
    # page counts and totals are sums of these, so it never counts the observations table.
    Column("observation_days", SmallInteger, nullable=False, server_default="0"),
    comment="One row per station and year; a statistic with no contributing day is NULL.",
    **_MYSQL_TABLE_OPTIONS,
)

station_summary = Table(
    "station_summary",
    metadata,
    Column("station_id", StationId, primary_key=True),
    Column("first_obs_date", Date, nullable=False),
    Column("last_obs_date", Date, nullable=False),
    Column("observation_days", Integer, nullable=False),
    comment="One row per station, kept by the aggregation: the station list reads it alone.",
    **_MYSQL_TABLE_OPTIONS,
)

stations = Table(
    "stations",
    metadata,
    Column("station_id", StationId, primary_key=True),
    # The id's first two letters (GHCN's FIPS country code), kept so a country is an index range.
    Column("country_code", String(2), nullable=False),
    Column("latitude", Numeric(7, 4), nullable=False),
    Column("longitude", Numeric(8, 4), nullable=False),
    Column("elevation_m", Numeric(6, 1), nullable=True),
    Column("state", String(2), nullable=True),
    Column("name", String(30), nullable=False),
    Column("gsn_flag", String(3), nullable=True),
    Column("hcn_crn_flag", String(3), nullable=True),
    Column("wmo_id", String(5), nullable=True),
    Index(None, "state", "station_id"),
    Index(None, "country_code", "station_id"),
    comment="Station metadata from NOAA's ghcnd-stations.txt; joined to the data at query time.",
    **_MYSQL_TABLE_OPTIONS,
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("files_seen", Integer, nullable=False, server_default="0"),
    Column("files_skipped", Integer, nullable=False, server_default="0"),
    Column("files_loaded", Integer, nullable=False, server_default="0"),
    Column("files_failed", Integer, nullable=False, server_default="0"),
    Column("records_read", BigInteger, nullable=False, server_default="0"),
    Column("records_inserted", BigInteger, nullable=False, server_default="0"),
    Column("records_updated", BigInteger, nullable=False, server_default="0"),
    Column("records_unchanged", BigInteger, nullable=False, server_default="0"),
    Column("records_rejected", BigInteger, nullable=False, server_default="0"),
    # GHCN-Daily: values not loaded because NOAA's quality control flagged them, per flag
    # letter as JSON ('{"D": 3}'), and values of elements other than TMAX, TMIN and PRCP.
    Column("values_qc_removed", BigInteger, nullable=False, server_default="0"),
    Column("qc_removed_by_flag", String(255), nullable=False, server_default="{}"),
    Column("values_other_elements", BigInteger, nullable=False, server_default="0"),
    Column("station_years_aggregated", Integer, nullable=False, server_default="0"),
    comment="One row per ingest, aggregate or run command: its outcome and counts.",
    **_MYSQL_TABLE_OPTIONS,
)

ingested_files = Table(
    "ingested_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", StationId, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("source_uri", String(1024), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("run_id", Integer, ForeignKey("job_runs.id"), nullable=False),
    Column("ingested_at", DateTime, nullable=False),
    Column("records_read", Integer, nullable=False),
    Column("records_inserted", Integer, nullable=False),
    Column("records_updated", Integer, nullable=False),
    Column("records_unchanged", Integer, nullable=False),
    Column("records_rejected", Integer, nullable=False),
    Column("values_qc_removed", Integer, nullable=False, server_default="0"),
    Column("qc_removed_by_flag", String(255), nullable=False, server_default="{}"),
    Column("values_other_elements", Integer, nullable=False, server_default="0"),
    # The ledger: a file whose content was loaded for this station is skipped next time. A
    # file of many stations (a by-year file) is keyed by its name instead of a station, with
    # '@' and a digest of the run's station selection when only some of its lines were kept.
    UniqueConstraint("station_id", "content_sha256"),
    comment="Ledger of loaded files, written in the same transaction as their rows.",
    **_MYSQL_TABLE_OPTIONS,
)

ingested_objects = Table(
    "ingested_objects",
    metadata,
    # The key is the URI's hash: an S3 URI can be longer than MySQL allows in an index.
    Column("source_uri_sha256", String(64), primary_key=True),
    Column("source_uri", String(1024), nullable=False),
    Column("etag", String(255), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("file_id", Integer, ForeignKey("ingested_files.id"), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    comment="The object version (ETag, size) last read at each S3 URI, and its ledger file: "
    "an object listed with the same ETag and size is skipped without being read.",
    **_MYSQL_TABLE_OPTIONS,
)

ingested_station_digests = Table(
    "ingested_station_digests",
    metadata,
    # The ledger's subject of a big file (a by-year file's name, with its selection's digest).
    Column("subject", StationId, primary_key=True),
    # The station whose lines these are; '' for lines that do not start with a station id.
    Column("station_id", StationId, primary_key=True),
    Column("lines", Integer, nullable=False),
    # The sum, modulo 2**64 (as a signed integer), of a 64-bit checksum of each line.
    Column("digest", BigInteger, nullable=False),
    comment="Per station, a digest of a big file's lines at its last load: a reload parses "
    "and compares only the stations whose lines changed (see wxhub.ingestion.digests).",
    **_MYSQL_TABLE_OPTIONS,
)

ingestion_rejects = Table(
    "ingestion_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("ingested_files.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("line_text", String(200), nullable=False),
    Index(None, "file_id", "line_no"),
    comment="Lines refused by the parser, with the reason, so nothing is silently lost.",
    **_MYSQL_TABLE_OPTIONS,
)

aggregation_pending = Table(
    "aggregation_pending",
    metadata,
    Column("station_id", StationId, primary_key=True),
    Column("year", SmallInteger, primary_key=True, autoincrement=False),
    comment="Station-years changed since their statistics were last computed.",
    **_MYSQL_TABLE_OPTIONS,
)

data_version = Table(
    "data_version",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    comment="One row: a counter bumped by every transaction that changes served data.",
    **_MYSQL_TABLE_OPTIONS,
)


def bump_data_version(conn: Any) -> None:
    """Mark, inside the caller's transaction, that served data changed (new ETags)."""
    conn.execute(data_version.update().values(version=data_version.c.version + 1))
