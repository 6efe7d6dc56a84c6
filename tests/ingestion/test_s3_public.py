"""NOAA's public bucket (noaa-ghcn-pds) against moto: read without credentials, from any
region, skipping unchanged objects unread and objects the selection leaves out unlisted.

Every request wxhub sends is seen before it leaves (botocore's ``before-send`` event), so
"unsigned" and "the bucket's own region" are checked on the requests themselves.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine

from tests.ghcn_files import CSV_HEADER, csv_line, stations_line
from tests.ingestion.test_ingest import last_run, observations
from wxhub import aws
from wxhub.ingestion.selection import SelectionSpec
from wxhub.ingestion.sources import resolve
from wxhub.job import EXIT_OK, run_job

pytestmark = pytest.mark.usefixtures("aws")

BUCKET = "noaa-ghcn-pds"
PREFIX = "csv.gz/by_station/"
STATIONS = ("USC00110072", "USC00110187", "USW00094846")


class Requests:
    """Every S3 request the code under test sends: operation, host, signed or not."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-send.s3.*", self._record)
        return client

    def _record(self, request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        self.seen.append((operation, request.url.split("/")[2], "Authorization" in request.headers))

    def count(self, operation: str) -> int:
        return sum(1 for op, _, _ in self.seen if op == operation)


@pytest.fixture
def public_bucket() -> None:
    """NOAA's bucket as moto holds it: by-station CSV and the station list, in us-east-1."""
    admin = boto3.client("s3", region_name="us-east-1")
    admin.create_bucket(Bucket=BUCKET)
    # Public, as AWS Open Data buckets are: anyone may list and read (moto refuses unsigned
    # requests to a bucket without such a policy, as S3 does).
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            }
        ],
    }
    admin.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(public_read))
    for n, station in enumerate(STATIONS):
        lines = [CSV_HEADER, csv_line(station, "20140101", "TMAX", 10 + n)]
        body = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
        admin.put_object(Bucket=BUCKET, Key=f"{PREFIX}{station}.csv.gz", Body=body)
    station_list = "\n".join(stations_line(s, 41.0, -88.0, 200.0, "IL", s) for s in STATIONS)
    admin.put_object(Bucket=BUCKET, Key="ghcnd-stations.txt", Body=station_list.encode())


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Requests:
    seen = Requests()
    signed, unsigned = aws.client, aws.unsigned_client
    monkeypatch.setattr(aws, "client", lambda *a, **k: seen.watch(signed(*a, **k)))
    monkeypatch.setattr(aws, "unsigned_client", lambda *a, **k: seen.watch(unsigned(*a, **k)))
    return seen


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A laptop or CI runner with no AWS credentials at all (and no instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert not aws.has_credentials()


def run(engine: Engine, *specs: str, selection: SelectionSpec | None = None) -> int:
    found = resolve(specs)
    return run_job(
        engine,
        "run",
        sources=found.files,
        station_metadata=found.station_metadata,
        selection=selection,
        workers=0,
    )


def test_without_credentials_the_public_bucket_is_read_with_unsigned_requests_in_its_region(
    engine: Engine, public_bucket: None, requests: Requests, no_credentials: None
):
    assert run(engine, f"s3://{BUCKET}/{PREFIX}") == EXIT_OK

    assert [r[0] for r in observations(engine)] == list(STATIONS)
    assert requests.count("GetObject") == len(STATIONS)
    assert {signed for _, _, signed in requests.seen} == {False}
    # The job's region is eu-west-1 (the aws fixture); the bucket's is asked directly.
    assert {host for _, host, _ in requests.seen} <= {
        f"{BUCKET}.s3.amazonaws.com",
        f"{BUCKET}.s3.us-east-1.amazonaws.com",
    }


def test_with_the_setting_the_bucket_is_read_unsigned_even_with_credentials(
    engine: Engine, public_bucket: None, requests: Requests, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WXHUB_S3_ANONYMOUS", "1")

    assert run(engine, f"s3://{BUCKET}/{PREFIX}") == EXIT_OK

    assert requests.seen
    assert {signed for _, _, signed in requests.seen} == {False}


def test_with_credentials_and_no_setting_requests_are_signed_as_usual(
    engine: Engine, public_bucket: None, requests: Requests
):
    assert run(engine, f"s3://{BUCKET}/{PREFIX}") == EXIT_OK

    assert requests.seen
    assert {signed for _, _, signed in requests.seen} == {True}


def test_unchanged_public_objects_are_skipped_by_their_etag_without_being_read(
    engine: Engine, public_bucket: None, requests: Requests, no_credentials: None
):
    assert run(engine, f"s3://{BUCKET}/{PREFIX}") == EXIT_OK
    first = requests.count("GetObject")

    assert run(engine, f"s3://{BUCKET}/{PREFIX}") == EXIT_OK

    assert first == len(STATIONS)
    assert requests.count("GetObject") == first
    assert last_run(engine)["files_skipped"] == len(STATIONS)


def test_objects_a_selection_leaves_out_are_never_downloaded(
    engine: Engine, public_bucket: None, requests: Requests, no_credentials: None
):
    selection = SelectionSpec(patterns=("USW*",))

    assert run(engine, f"s3://{BUCKET}/{PREFIX}", selection=selection) == EXIT_OK

    assert [r[0] for r in observations(engine)] == ["USW00094846"]
    assert requests.count("GetObject") == 1


def test_the_station_list_beside_the_data_loads_first_and_a_state_picks_the_objects(
    engine: Engine,
    public_bucket: None,
    requests: Requests,
    no_credentials: None,
    wxhub_in_process: Callable[..., Any],
):
    selection = SelectionSpec(states=("IL",), patterns=("USC*",))

    assert (
        run(
            engine,
            f"s3://{BUCKET}/ghcnd-stations.txt",
            f"s3://{BUCKET}/{PREFIX}",
            selection=selection,
        )
        == EXIT_OK
    )

    assert [r[0] for r in observations(engine)] == ["USC00110072", "USC00110187"]
    assert requests.count("GetObject") == 3  # the station list, then the two chosen objects
