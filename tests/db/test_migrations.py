"""The Alembic migrations, and the constraints they create, on SQLite and on MariaDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Table, func, insert, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.conftest import noaa_line, write_station
from wxhub.aggregation.main import run_aggregation
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import (
    aggregation_pending,
    metadata,
    station_summary,
    weather_observations,
    weather_yearly_stats,
)
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import run_job

ALEMBIC_VERSION = "alembic_version"
DAY = dt.date(2000, 1, 1)
obs = weather_observations


@pytest.fixture
def empty_engine(db_url: URL) -> Iterator[Engine]:
    """An engine on an empty, never migrated database of each backend."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(empty_engine: Engine) -> Engine:
    migrate.upgrade(empty_engine)
    return empty_engine


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _stamped_versions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(f"SELECT version_num FROM {ALEMBIC_VERSION}")).scalars())


def _schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        # No filtering needed: both backends report no difference at all, server defaults
        # and table comments included (SQLite has no comments, so Alembic skips them there).
        return list(compare_metadata(context, metadata))


def _downgrade_to_base(engine: Engine) -> None:
    config = migrate.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")


def _observation(station_id: str = "USC1", obs_date: dt.date = DAY, **values: int) -> dict:
    """A row of weather_observations; values not given are missing (NULL)."""
    missing = dict.fromkeys(
        ("max_temp_tenths_c", "min_temp_tenths_c", "precipitation_tenths_mm"), None
    )
    return {"station_id": station_id, "obs_date": obs_date, **missing, **values}


def _count(engine: Engine, table: Table, *where: object) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


# -- upgrade and downgrade -----------------------------------------------------------------


def test_upgrading_an_empty_database_creates_exactly_the_schema_tables_and_stamps_head(
    empty_engine: Engine,
) -> None:
    head = migrate.head_revision()
    assert head == migrate.HEAD_REVISION
    assert _tables(empty_engine) == set()
    assert migrate.current_revision(empty_engine) is None

    assert migrate.upgrade(empty_engine) == (None, head)

    assert _tables(empty_engine) == set(metadata.tables) | {ALEMBIC_VERSION}
    assert _stamped_versions(empty_engine) == [head]
    assert migrate.current_revision(empty_engine) == head


def test_upgrading_twice_is_a_no_op(migrated_engine: Engine) -> None:
    head = migrate.head_revision()
    with migrated_engine.begin() as conn:
        conn.execute(insert(obs), [_observation(max_temp_tenths_c=1)])
    tables = _tables(migrated_engine)

    assert migrate.upgrade(migrated_engine) == (head, head)

    assert _tables(migrated_engine) == tables
    assert _stamped_versions(migrated_engine) == [head]
    assert _count(migrated_engine, obs) == 1  # nothing was dropped and recreated


def test_migrations_whose_ddl_ran_but_were_never_stamped_finish_on_the_next_run(
    migrated_engine: Engine,
) -> None:
    # What a run killed inside a migration leaves on MySQL, where each DDL statement commits
    # on its own: the work done (here: all of it), the revision not recorded.
    with migrated_engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {ALEMBIC_VERSION}"))
    tables = _tables(migrated_engine)

    assert migrate.upgrade(migrated_engine)[1] == migrate.head_revision()

    assert _tables(migrated_engine) == tables
    assert _schema_differences(migrated_engine) == []
    with migrated_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM data_version")).scalar() == 1


def test_the_station_summary_migration_fills_in_the_data_already_loaded(
    empty_engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    write_station(
        folder, "USC00000001", [noaa_line("19991231", 1, 0, 0), noaa_line("20000102", 1, 0, 0)]
    )
    write_station(folder, "USC00000002", [noaa_line("20050607", 1, 0, 0)])
    assert run_job(empty_engine, "run", sources=resolve_sources([str(folder)])) == 0
    expected = _summary_rows(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("DROP TABLE station_summary"))
        conn.execute(text(f"UPDATE {ALEMBIC_VERSION} SET version_num = '0004'"))

    migrate.upgrade(empty_engine)

    assert expected == [
        ("USC00000001", dt.date(1999, 12, 31), dt.date(2000, 1, 2), 2),
        ("USC00000002", dt.date(2005, 6, 7), dt.date(2005, 6, 7), 1),
    ]
    assert _summary_rows(empty_engine) == expected


def _summary_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        query = select(station_summary).order_by(station_summary.c.station_id)
        return [tuple(row) for row in conn.execute(query)]


def test_migrated_schema_matches_the_table_definitions(migrated_engine: Engine) -> None:
    assert _schema_differences(migrated_engine) == []


def test_schema_comparison_notices_a_table_the_migrations_did_not_create(
    migrated_engine: Engine,
) -> None:
    # The comparison above can fail: a drifted database is reported.
    with migrated_engine.begin() as conn:
        conn.execute(text("DROP TABLE aggregation_pending"))

    differences = _schema_differences(migrated_engine)

    assert [(diff[0], diff[1].name) for diff in differences] == [
        ("add_table", "aggregation_pending")
    ]


def test_downgrade_to_base_then_upgrade_again_recreates_the_schema(
    migrated_engine: Engine,
) -> None:
    head = migrate.head_revision()
    with migrated_engine.begin() as conn:
        conn.execute(insert(obs), [_observation(max_temp_tenths_c=1)])

    _downgrade_to_base(migrated_engine)

    assert _tables(migrated_engine) <= {ALEMBIC_VERSION}
    assert migrate.current_revision(migrated_engine) is None

    assert migrate.upgrade(migrated_engine) == (None, head)

    assert _tables(migrated_engine) == set(metadata.tables) | {ALEMBIC_VERSION}
    assert _stamped_versions(migrated_engine) == [head]
    assert _schema_differences(migrated_engine) == []
    assert _count(migrated_engine, obs) == 0


# -- keys and constraints ------------------------------------------------------------------


def test_primary_key_of_observations_is_station_and_date(migrated_engine: Engine) -> None:
    primary_key = inspect(migrated_engine).get_pk_constraint("weather_observations")
    assert primary_key["constrained_columns"] == ["station_id", "obs_date"]


def test_inserting_the_same_station_day_twice_raises_integrity_error(
    migrated_engine: Engine,
) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(
            insert(obs),
            [
                _observation("USC1", DAY, max_temp_tenths_c=1),
                _observation("USC1", DAY + dt.timedelta(days=1)),  # same station, next day
                _observation("USC2", DAY),  # same day, other station
            ],
        )

    with pytest.raises(IntegrityError), migrated_engine.begin() as conn:
        conn.execute(insert(obs), [_observation("USC1", DAY, max_temp_tenths_c=2)])

    assert _count(migrated_engine, obs) == 3
    with migrated_engine.connect() as conn:
        kept = conn.execute(
            select(obs.c.max_temp_tenths_c).where(obs.c.station_id == "USC1", obs.c.obs_date == DAY)
        ).scalar_one()
    assert kept == 1


@pytest.mark.parametrize(
    ("column", "rejected", "accepted"),
    [
        pytest.param("max_temp_tenths_c", 601, 600, id="max-temperature-above"),
        pytest.param("max_temp_tenths_c", -901, -900, id="max-temperature-below"),
        pytest.param("min_temp_tenths_c", 601, 600, id="min-temperature-above"),
        pytest.param("min_temp_tenths_c", -901, -900, id="min-temperature-below"),
        pytest.param("precipitation_tenths_mm", 20001, 20000, id="precipitation-above"),
        pytest.param("precipitation_tenths_mm", -1, 0, id="precipitation-negative"),
    ],
)
def test_check_constraints_reject_an_out_of_range_value_and_accept_the_limit(
    migrated_engine: Engine, column: str, rejected: int, accepted: int
) -> None:
    constraint = {
        "max_temp_tenths_c": "ck_weather_observations_max_temp_range",
        "min_temp_tenths_c": "ck_weather_observations_min_temp_range",
        "precipitation_tenths_mm": "ck_weather_observations_precipitation_range",
    }[column]
    # SQLite raises IntegrityError; PyMySQL maps MariaDB's error 4025 (CONSTRAINT ... failed)
    # to OperationalError. Either way the message names the constraint that refused the row.
    with (
        pytest.raises((IntegrityError, OperationalError), match=constraint),
        migrated_engine.begin() as conn,
    ):
        conn.execute(insert(obs), [_observation(**{column: rejected})])
    assert _count(migrated_engine, obs) == 0

    with migrated_engine.begin() as conn:
        conn.execute(insert(obs), [_observation(**{column: accepted})])
    assert _count(migrated_engine, obs, obs.c[column] == accepted) == 1


def test_missing_values_are_allowed_by_the_check_constraints(migrated_engine: Engine) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(insert(obs), [_observation()])  # all three values NULL

    assert _count(migrated_engine, obs, obs.c.max_temp_tenths_c.is_(None)) == 1


@pytest.mark.parametrize(
    ("table", "row"),
    [
        pytest.param(obs, {"obs_date": DAY}, id="weather_observations"),
        pytest.param(
            weather_yearly_stats,
            {"year": 2000, "max_temp_days": 0, "min_temp_days": 0, "precipitation_days": 0},
            id="weather_yearly_stats",
        ),
        pytest.param(aggregation_pending, {"year": 2000}, id="aggregation_pending"),
    ],
)
def test_station_ids_differing_only_in_case_are_two_stations(
    migrated_engine: Engine, table: Table, row: dict
) -> None:
    with migrated_engine.begin() as conn:
        conn.execute(insert(table), [{"station_id": "usc1", **row}])
        conn.execute(insert(table), [{"station_id": "USC1", **row}])  # no duplicate key

    assert _count(migrated_engine, table) == 2
    assert _count(migrated_engine, table, table.c.station_id == "usc1") == 1
    assert _count(migrated_engine, table, table.c.station_id == "USC1") == 1
    assert _count(migrated_engine, table, table.c.station_id == "Usc1") == 0
    with migrated_engine.connect() as conn:
        ordered = conn.execute(select(table.c.station_id).order_by(table.c.station_id)).scalars()
        assert list(ordered) == ["USC1", "usc1"]  # binary order, capitals first
        grouped = conn.execute(select(table.c.station_id).group_by(table.c.station_id)).all()
        assert len(grouped) == 2


def test_the_head_revision_constant_names_the_newest_migration_script() -> None:
    assert migrate.head_revision() == migrate.HEAD_REVISION


def test_upgrading_from_0001_queues_every_station_year_so_the_next_aggregation_counts_days(
    empty_engine: Engine,
) -> None:
    config = migrate.alembic_config()
    with empty_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with empty_engine.begin() as conn:
        conn.execute(insert(weather_observations).values(_observation()))
        conn.execute(
            text(
                "INSERT INTO weather_yearly_stats (station_id, year, max_temp_days, "
                "min_temp_days, precipitation_days) VALUES ('USC1', :year, 1, 1, 1)"
            ),
            {"year": DAY.year},
        )

    migrate.upgrade(empty_engine)

    assert run_aggregation(empty_engine) == 1
    with empty_engine.connect() as conn:
        days = conn.execute(select(weather_yearly_stats.c.observation_days)).scalar_one()
    assert days == 1
