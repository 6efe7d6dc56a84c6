"""S3 sources against moto: listing, streaming, and skipping unchanged objects unread.

Every GetObject and ListObjectsV2 call wxhub makes is counted, so "skipped without being
read" is checked, not assumed. The ledger tests run on SQLite and on MariaDB.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import Result
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from tests.conftest import AWS_REGION, DATA_DIR, noaa_line, throwaway_mysql_database
from tests.ingestion.test_ghcn import fresh_like
from tests.ingestion.test_ingest import last_run, observations, snapshot
from wxhub import aws
from wxhub.db.engine import make_engine
from wxhub.db.schema import ingested_files, ingested_objects
from wxhub.ingestion import s3
from wxhub.ingestion.sources import ObjectVersion, SourceError, resolve_sources
from wxhub.job import EXIT_FAILED, EXIT_OK, run_job

pytestmark = pytest.mark.usefixtures("aws")

BUCKET = "wxhub-raw-test"
STATION = "USC00000001"
LINES = [noaa_line("20000101", 10, -20, 0), noaa_line("20000102", 20, -10, 5)]


class Bucket:
    """A moto bucket, and the S3 calls wxhub made, by operation name."""

    def __init__(self) -> None:
        self.client = boto3.client("s3", region_name=AWS_REGION)
        self.client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": AWS_REGION}
        )
        self.calls: Counter[str] = Counter()
        self.client.meta.events.register("before-call.s3.*", self._count)

    def _count(self, model: Any, **_kwargs: Any) -> None:
        self.calls[model.name] += 1

    def put(self, key: str, lines: list[str] | bytes, *, gz: bool = False, mtime: int = 0) -> None:
        raw = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        body = gzip.compress(raw, mtime=mtime) if gz else raw
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body)

    def gets(self) -> int:
        return self.calls["GetObject"]


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """An empty bucket; every S3 client wxhub asks for is this counting one."""
    counted = Bucket()
    monkeypatch.setattr(aws, "client", lambda *_args, **_kwargs: counted.client)
    return counted


def run(engine: Engine, *specs: str, force: bool = False) -> int:
    return run_job(engine, "run", sources=resolve_sources(specs), force=force, workers=0)


# --- listing and reading -----------------------------------------------------------------------


def test_a_prefix_gives_its_station_objects_in_key_order_and_ignores_other_keys(
    bucket: Bucket,
) -> None:
    for key in (
        "raw/USC00000002.txt.gz",
        "raw/USC00000001.txt",
        "raw/2024/USC00000003.txt",  # deeper keys are under the prefix too
        "raw/README.md",
        "raw/USC00000004.json",
        "raw/readme-by_station.txt",  # NOAA's notes beside the data
        "raw/bad id.txt",
        "raw/",  # the "folder" a console creates
        "other/USC00000005.txt",
    ):
        bucket.put(key, LINES)

    files = resolve_sources([f"s3://{BUCKET}/raw/"])

    assert [(f.uri, f.station_id) for f in files] == [
        (f"s3://{BUCKET}/raw/2024/USC00000003.txt", "USC00000003"),
        (f"s3://{BUCKET}/raw/USC00000001.txt", "USC00000001"),
        (f"s3://{BUCKET}/raw/USC00000002.txt.gz", "USC00000002"),
    ]
    assert bucket.gets() == 0  # listing reads no object


def test_the_listing_follows_every_page(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", 2)
    for n in range(7):
        bucket.put(f"USC0000000{n}.txt", LINES)

    files = resolve_sources([f"s3://{BUCKET}"])

    assert [f.station_id for f in files] == [f"USC0000000{n}" for n in range(7)]
    assert bucket.calls["ListObjectsV2"] == 4


def test_the_listing_gives_each_object_s_etag_without_quotes_and_its_size(bucket: Bucket) -> None:
    bucket.put("USC00000001.txt", LINES)
    listed = bucket.client.head_object(Bucket=BUCKET, Key="USC00000001.txt")

    (file,) = resolve_sources([f"s3://{BUCKET}/"])

    quoted = listed["ETag"]
    assert quoted[0] == quoted[-1] == '"'  # as S3 sends it; the version holds it bare
    assert file.version == ObjectVersion(quoted[1:-1], listed["ContentLength"])


def test_plain_and_gzip_objects_read_as_their_decompressed_content(bucket: Bucket) -> None:
    bucket.put("USC00000001.txt", LINES)
    bucket.put("USC00000002.txt.gz", LINES, gz=True)

    contents = [f.read_bytes() for f in resolve_sources([f"s3://{BUCKET}/"])]

    assert contents == [("\n".join(LINES) + "\n").encode()] * 2


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"not gzip at all", "not a valid gzip file"), (gzip.compress(b"x" * 100)[:-6], "gzip")],
    ids=["not-gzip", "truncated"],
)
def test_a_corrupt_gzip_object_fails_when_read_with_a_clear_message(
    bucket: Bucket, body: bytes, words: str
) -> None:
    bucket.client.put_object(Bucket=BUCKET, Key="USC00000001.txt.gz", Body=body)
    (file,) = resolve_sources([f"s3://{BUCKET}/"])

    with pytest.raises(OSError, match=words):
        file.read_bytes()


def test_an_object_deleted_after_listing_fails_when_read(bucket: Bucket) -> None:
    bucket.put("USC00000001.txt", LINES)
    (file,) = resolve_sources([f"s3://{BUCKET}/"])
    bucket.client.delete_object(Bucket=BUCKET, Key="USC00000001.txt")

    with pytest.raises(OSError, match="deleted after it was listed"):
        file.read_bytes()


def test_an_object_replaced_after_listing_fails_rather_than_load_another_version(
    bucket: Bucket,
) -> None:
    bucket.put("USC00000001.txt", LINES)
    (file,) = resolve_sources([f"s3://{BUCKET}/"])
    bucket.put("USC00000001.txt", LINES[:1])

    with pytest.raises(OSError, match="changed after it was listed"):
        file.read_bytes()


def test_a_missing_bucket_is_a_source_error_naming_it(bucket: Bucket) -> None:
    with pytest.raises(SourceError) as excinfo:
        resolve_sources(["s3://wxhub-no-such-bucket/raw/"])

    assert str(excinfo.value) == (
        "source 's3://wxhub-no-such-bucket/raw/': cannot list bucket 'wxhub-no-such-bucket': "
        "the bucket does not exist (check the name, the account and the region)"
    )


def test_access_denied_to_the_bucket_is_a_source_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = boto3.client("s3", region_name=AWS_REGION)
    stubber = Stubber(client)
    stubber.add_client_error("list_objects_v2", "AccessDenied", http_status_code=403)
    stubber.activate()
    monkeypatch.setattr(aws, "client", lambda *_args, **_kwargs: client)

    with pytest.raises(SourceError) as excinfo:
        resolve_sources([f"s3://{BUCKET}/raw/"])

    assert f"cannot list bucket {BUCKET!r}: access denied" in str(excinfo.value)


@pytest.mark.parametrize("spec", ["s3://", "s3:///raw/"])
def test_an_s3_uri_without_a_bucket_is_a_source_error(spec: str) -> None:
    with pytest.raises(SourceError, match="no bucket name"):
        resolve_sources([spec])


def test_an_empty_prefix_gives_no_files_and_no_error(bucket: Bucket) -> None:
    assert resolve_sources([f"s3://{BUCKET}/nothing-here/"]) == []


# --- the ledger: unchanged objects are skipped unread -------------------------------------------


def test_a_rerun_skips_every_unchanged_object_without_reading_it(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"raw/{STATION}.txt", LINES)
    bucket.put("raw/USC00000002.txt.gz", LINES, gz=True)
    assert run(engine, f"s3://{BUCKET}/raw/") == EXIT_OK
    assert bucket.gets() == 2
    before = snapshot(engine)

    assert run(engine, f"s3://{BUCKET}/raw/") == EXIT_OK

    assert bucket.gets() == 2  # no GetObject at all on the second run
    summary = last_run(engine)
    assert (summary["files_seen"], summary["files_skipped"], summary["files_loaded"]) == (2, 2, 0)
    assert snapshot(engine) == before


def test_each_object_s_uri_etag_and_size_are_recorded_with_its_ledger_file(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"raw/{STATION}.txt", LINES)
    assert run(engine, f"s3://{BUCKET}/raw/") == EXIT_OK
    head = bucket.client.head_object(Bucket=BUCKET, Key=f"raw/{STATION}.txt")

    with engine.connect() as conn:
        row = conn.execute(select(ingested_objects)).one()
        file_id = conn.execute(select(ingested_files.c.id)).scalar_one()

    assert row.source_uri == f"s3://{BUCKET}/raw/{STATION}.txt"
    assert (f'"{row.etag}"', row.size_bytes) == (head["ETag"], head["ContentLength"])
    assert row.file_id == file_id  # the ledger's one file


def test_a_changed_object_is_read_again_and_its_changes_loaded(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"{STATION}.txt", LINES)
    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK
    bucket.put(f"{STATION}.txt", [*LINES, noaa_line("20000103", 30, 0, 0)])

    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK

    assert bucket.gets() == 2
    summary = last_run(engine)
    assert (summary["files_loaded"], summary["records_inserted"]) == (1, 1)
    assert (summary["records_unchanged"], summary["files_skipped"]) == (2, 0)
    assert len(observations(engine)) == 3


def test_the_same_content_uploaded_again_is_read_once_skipped_by_hash_then_skipped_unread(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"{STATION}.txt.gz", LINES, gz=True, mtime=1)
    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK
    before = snapshot(engine)
    # Same lines, compressed at another time: a new ETag and size, the same content.
    bucket.put(f"{STATION}.txt.gz", LINES, gz=True, mtime=2)

    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK

    assert bucket.gets() == 2  # read once more, to learn it is the same content
    assert (last_run(engine)["files_skipped"], last_run(engine)["records_read"]) == (1, 0)
    assert snapshot(engine) == before

    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK

    assert bucket.gets() == 2  # its new version is in the ledger now: not read again
    assert last_run(engine)["files_skipped"] == 1


def test_a_big_object_with_a_new_etag_and_known_content_is_read_once_and_never_parsed(
    engine: Engine, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wxhub.ingestion import main as ingestion_main  # noqa: PLC0415

    monkeypatch.setattr(ingestion_main, "MAX_FILE_BYTES", 2048)  # streamed, as a by-year file
    monkeypatch.setattr(ingestion_main, "CHUNK_BYTES", 1024)
    stations = [f"USC0000000{k}" for k in range(1, 6)]
    by_year = [
        f"{station},2014{month:02d}{day:02d},TMAX,{day * 3},,,7,"
        for station in stations
        for month in (1, 2)
        for day in range(1, 29)
    ]
    bucket.put("2014.csv.gz", by_year, gz=True, mtime=1)
    assert run(engine, f"s3://{BUCKET}/2014.csv.gz") == EXIT_OK
    assert bucket.gets() == 2  # new content: hashed, then read again to load it
    before = snapshot(engine)
    bucket.put("2014.csv.gz", by_year, gz=True, mtime=2)  # a new ETag, the same content
    parsed: list[bytes] = []
    real_parse = ingestion_main.parse_for_loading
    monkeypatch.setattr(
        ingestion_main,
        "parse_for_loading",
        lambda data, *a, **kw: (parsed.append(data), real_parse(data, *a, **kw))[1],
    )

    assert run(engine, f"s3://{BUCKET}/2014.csv.gz") == EXIT_OK

    assert (bucket.gets(), parsed) == (3, [])  # one more read, to hash it; no parsing
    assert (last_run(engine)["files_skipped"], last_run(engine)["records_read"]) == (1, 0)
    assert snapshot(engine) == before

    assert run(engine, f"s3://{BUCKET}/2014.csv.gz") == EXIT_OK

    assert bucket.gets() == 3  # its new version is in the ledger now: not read again


def test_force_reads_every_object_again(engine: Engine, bucket: Bucket) -> None:
    bucket.put(f"{STATION}.txt", LINES)
    bucket.put("USC00000002.txt", LINES)
    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK

    assert run(engine, f"s3://{BUCKET}/", force=True) == EXIT_OK

    assert bucket.gets() == 4
    summary = last_run(engine)
    assert (summary["files_loaded"], summary["records_unchanged"]) == (2, 4)


def test_an_object_that_cannot_be_read_fails_alone_and_the_run_exits_1(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"{STATION}.txt", LINES)
    bucket.client.put_object(Bucket=BUCKET, Key="USC00000002.txt.gz", Body=b"not gzip")

    assert run(engine, f"s3://{BUCKET}/") == EXIT_FAILED

    summary = last_run(engine)
    assert (summary["files_loaded"], summary["files_failed"]) == (1, 1)
    with engine.connect() as conn:
        recorded = conn.execute(select(ingested_objects.c.source_uri)).scalars().all()
    assert recorded == [f"s3://{BUCKET}/{STATION}.txt"]  # the failed one is read again next time


def test_an_object_whose_content_came_first_from_a_local_file_is_read_once(
    engine: Engine, bucket: Bucket, tmp_path: Path
) -> None:
    local = tmp_path / "in"
    local.mkdir()
    (local / f"{STATION}.txt").write_text("\n".join(LINES) + "\n")
    assert run(engine, str(local)) == EXIT_OK
    bucket.put(f"{STATION}.txt", LINES)

    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK
    assert run(engine, f"s3://{BUCKET}/") == EXIT_OK

    assert bucket.gets() == 1
    assert last_run(engine)["files_skipped"] == 1


# --- the whole job, as the scheduled task runs it -----------------------------------------------


def upload_real_files(bucket: Bucket, count: int) -> Path:
    """The first ``count`` vendored station files, every other one gzip-compressed."""
    names = sorted(os.listdir(DATA_DIR))[:count]
    for n, name in enumerate(names):
        raw = (DATA_DIR / name).read_bytes()
        if n % 2:
            bucket.client.put_object(Bucket=BUCKET, Key=f"raw/{name}.gz", Body=gzip.compress(raw))
        else:
            bucket.client.put_object(Bucket=BUCKET, Key=f"raw/{name}", Body=raw)
    return DATA_DIR


@pytest.fixture
def second_db_url(db_url: URL, tmp_path: Path) -> Iterator[URL]:
    """Another empty database of the same backend as ``db_url``."""
    if db_url.get_backend_name() == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / "local.db"))
    else:
        with throwaway_mysql_database() as url:
            yield url


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_wxhub_run_from_s3_gives_the_same_tables_row_for_row_as_from_the_local_folder(
    wxhub_in_process: Callable[..., Result],
    bucket: Bucket,
    db_url: URL,
    second_db_url: URL,
    tmp_path: Path,
) -> None:
    upload_real_files(bucket, 4)
    local = tmp_path / "local"
    local.mkdir()
    for name in sorted(os.listdir(DATA_DIR))[:4]:
        (local / name).write_bytes((DATA_DIR / name).read_bytes())

    from_s3 = wxhub_in_process(
        "run", f"s3://{BUCKET}/raw/", env={"DATABASE_URL": db_url.render_as_string(False)}
    )
    from_folder = wxhub_in_process(
        "run", str(local), env={"DATABASE_URL": second_db_url.render_as_string(False)}
    )

    assert (from_s3.exit_code, from_folder.exit_code) == (0, 0), from_s3.output
    summary = json_lines(from_s3.stdout)[-1]
    assert (summary["files_loaded"], summary["records_rejected"]) == (4, 0)
    assert summary["records_ingested"] == json_lines(from_folder.stdout)[-1]["records_ingested"]
    s3_engine, local_engine = make_engine(db_url), make_engine(second_db_url)
    try:
        assert snapshot(s3_engine) == snapshot(local_engine)
        assert len(snapshot(s3_engine)["observations"]) == summary["records_ingested"]
    finally:
        s3_engine.dispose()
        local_engine.dispose()


def test_wxhub_run_on_a_missing_bucket_exits_2_naming_the_bucket(
    wxhub_in_process: Callable[..., Result], bucket: Bucket, tmp_path: Path
) -> None:
    result = wxhub_in_process(
        "run", "s3://wxhub-no-such-bucket/", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    )

    assert result.exit_code == 2
    (error,) = json_lines(result.stdout)
    assert "wxhub-no-such-bucket" in error["message"]
    assert "does not exist" in error["message"]


# --- big objects: one download per run ----------------------------------------------------------


def by_year_lines(bump: int = 0) -> list[str]:
    """A small by-year file of five stations; ``bump`` adds to the first station's values."""
    return [
        f"USC0000000{k},2014{month:02d}{day:02d},TMAX,{day * 3 + (bump if k == 1 else 0)},,,7,"
        for k in range(1, 6)
        for month in (1, 2)
        for day in range(1, 29)
    ]


@pytest.fixture
def big_objects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Objects above 1 KB are copied to local disk, files above 2 KB are streamed in 1 KB
    chunks (a by-year file is a few hundred MB); the copies go to the folder returned."""
    from wxhub.ingestion import main as ingestion_main  # noqa: PLC0415
    from wxhub.ingestion import spool  # noqa: PLC0415

    monkeypatch.setattr(ingestion_main, "MAX_FILE_BYTES", 2048)
    monkeypatch.setattr(ingestion_main, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(spool, "COPY_OVER_BYTES", 1024)
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_big_object_is_downloaded_once_per_run_however_often_it_is_read(
    engine: Engine, bucket: Bucket, big_objects: Path, tmp_path: Path
) -> None:
    """A reload with a few changed values reads the file three times (hash, digests, the
    changed stations): from the local copy, so one GetObject, and the same tables as the
    same files loaded from a local folder."""
    bucket.put("2014.csv", by_year_lines())
    assert run(engine, f"s3://{BUCKET}/2014.csv") == EXIT_OK
    assert bucket.gets() == 1  # hashed, then loaded: both from the copy
    bucket.put("2014.csv", by_year_lines(bump=1))
    with fresh_like(engine) as local:
        for bump in (0, 1):
            folder = tmp_path / f"local{bump}"
            folder.mkdir()
            (folder / "2014.csv").write_text("\n".join(by_year_lines(bump)) + "\n")
            assert run(local, str(folder / "2014.csv")) == EXIT_OK
        expected = observations(local)

    assert run(engine, f"s3://{BUCKET}/2014.csv") == EXIT_OK

    assert bucket.gets() == 2
    assert (last_run(engine)["records_updated"], last_run(engine)["records_unchanged"]) == (56, 0)
    assert observations(engine) == expected
    assert list(big_objects.iterdir()) == []  # no copy left behind


def test_a_copy_that_cannot_be_written_fails_its_file_alone_saying_where(
    engine: Engine,
    bucket: Bucket,
    big_objects: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wxhub.ingestion import spool  # noqa: PLC0415

    bucket.put("2014.csv", by_year_lines())
    bucket.put(f"{STATION}.txt", LINES)  # small: read directly, never copied

    def full_disk(folder: Path, name: str) -> tuple[Any, Path]:
        # /dev/full: every write fails with ENOSPC, from the kernel.
        return open("/dev/full", "wb", buffering=0), folder / name

    monkeypatch.setattr(spool.Spool, "_new_file", staticmethod(full_disk))

    assert run(engine, f"s3://{BUCKET}/") == EXIT_FAILED

    summary = last_run(engine)
    assert (summary["files_loaded"], summary["files_failed"]) == (1, 1)
    (failure,) = [
        r
        for r in caplog.records
        if getattr(r, "event", None) == "file" and getattr(r, "status", None) == "failed"
    ]
    assert failure.source == f"s3://{BUCKET}/2014.csv"
    assert failure.error.startswith("cannot read: cannot copy it to local disk")
    assert "No space left on device" in failure.error
    assert "TMPDIR" in failure.error
    assert [p.name for p in big_objects.iterdir()] == []


def test_a_download_cut_short_fails_its_file_rather_than_load_part_of_it(
    engine: Engine,
    bucket: Bucket,
    big_objects: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket.put("2014.csv", by_year_lines())
    real_pieces = s3.S3Object.stored_pieces

    def cut_short(self: s3.S3Object) -> Iterator[bytes]:
        whole = b"".join(real_pieces(self))
        yield whole[: len(whole) - len(whole) // 3]  # the connection ended early, no error

    monkeypatch.setattr(s3.S3Object, "stored_pieces", cut_short)

    assert run(engine, f"s3://{BUCKET}/2014.csv") == EXIT_FAILED

    assert last_run(engine)["files_loaded"] == 0
    assert observations(engine) == []
    (failure,) = [
        r
        for r in caplog.records
        if getattr(r, "event", None) == "file" and getattr(r, "status", None) == "failed"
    ]
    size = len(("\n".join(by_year_lines()) + "\n").encode())
    assert failure.error == (
        f"cannot read: the download ended after {size - size // 3} of its {size} bytes"
    )
    assert list(big_objects.iterdir()) == []
