"""S3 sources: ``s3://bucket/prefix/`` is every station object under the prefix.

The listing (ListObjectsV2, paginated) gives each object's key, ETag and size; the station
id comes from the last part of the key, as for a local file name, and other keys are left
out. An object is read only when the loader asks for it, streamed from the GetObject body and
decompressed on the fly for ``.gz`` (nothing is written to disk). The read is conditional on
the listed ETag, so the content read is always the version the ledger records.

NOAA publishes GHCN-Daily in a public bucket (``noaa-ghcn-pds``, us-east-1). It is read
without credentials: with unsigned requests when no credentials are configured (a laptop, a
CI runner), or always with ``WXHUB_S3_ANONYMOUS=1``; with credentials (the task role in
ECS), requests are signed as usual. Either way the client talks to the bucket's own region
when it is known, so the job reads it from any region.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from wxhub import aws
from wxhub.ingestion.sources import (
    GzipReader,
    ObjectVersion,
    SourceError,
    is_source_name,
    read_whole,
    station_id_for,
)
from wxhub.ingestion.stations import is_station_list

SCHEME = "s3://"
# S3's own maximum; the tests make it small to exercise the pagination.
LIST_PAGE_SIZE = 1000
# Public buckets wxhub is pointed at, and their regions: asked of the right region directly.
PUBLIC_BUCKET_REGIONS = {"noaa-ghcn-pds": "us-east-1"}
ANONYMOUS_SETTING = "WXHUB_S3_ANONYMOUS"
# A local copy is written in pieces of this size.
COPY_PIECE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class S3Object:
    """A station file in S3, as the listing described it."""

    bucket: str
    key: str
    station_id: str | None
    version: ObjectVersion
    client: Any = field(repr=False, compare=False)

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def open(self) -> BinaryIO:
        """The decompressed content as a stream; OSError with the reason when it cannot be
        read, at the request or at any read."""
        body = self._body()
        if self.key.endswith(".gz"):
            return cast(BinaryIO, GzipReader(cast(BinaryIO, body)))
        return cast(BinaryIO, body)

    def stored_pieces(self) -> Iterator[bytes]:
        """The object's bytes as stored (compressed if it is), a piece at a time, for a
        local copy (``spool.py``); OSError as for :meth:`open`."""
        with self._body() as body:
            while piece := body.read(COPY_PIECE_BYTES):
                yield piece

    def _body(self) -> _Body:
        """The listed version's body: ``IfMatch`` its ETag, so another version uploaded
        since the listing fails the read instead of mixing versions."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.key, IfMatch=f'"{self.version.etag}"'
            )
        except Exception as exc:
            raise OSError(_read_failure(exc)) from None
        return _Body(response["Body"])

    def read_bytes(self) -> bytes:
        """The decompressed content; OSError with the reason when it cannot be read."""
        with self.open() as stream:
            return read_whole(stream)


class _Body(io.RawIOBase):
    """A GetObject body whose read failures (a dropped connection) are OSError."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._body.read(None if size < 0 else size))
        except Exception as exc:
            raise OSError(_read_failure(exc)) from None

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


def _read_failure(exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    if code == "PreconditionFailed":
        return "the object changed after it was listed (the next run reads the new version)"
    if code in ("NoSuchKey", "404"):
        return "the object was deleted after it was listed"
    return aws.describe(exc, "the object")


def parse_uri(spec: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); the prefix may be empty."""
    bucket, _, prefix = spec.removeprefix(SCHEME).partition("/")
    if not bucket:
        raise SourceError(f"source {spec!r}: no bucket name (expected s3://BUCKET/PREFIX/)")
    return bucket, prefix


def client_for(bucket: str, env: Mapping[str, str] | None = None) -> Any:
    """An S3 client for ``bucket``: unsigned when asked to be, or when there are no
    credentials; in the bucket's own region when it is a known public bucket."""
    env = os.environ if env is None else env
    region = PUBLIC_BUCKET_REGIONS.get(bucket) or aws.region_from(env)
    anonymous = env.get(ANONYMOUS_SETTING, "").strip().lower() in ("1", "true", "yes", "on")
    if anonymous or not aws.has_credentials():
        return aws.unsigned_client("s3", region)
    return aws.client("s3", region)


def list_station_objects(spec: str, client: Any = None) -> list[S3Object]:
    """The station objects under the prefix of ``spec``, in key order (with NOAA's station
    metadata file if there is one)."""
    bucket, prefix = parse_uri(spec)
    s3 = client if client is not None else client_for(bucket)
    found: list[S3Object] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
        )
        for page in pages:
            for listed in page.get("Contents", []):
                key = str(listed["Key"])
                name = key.rsplit("/", 1)[-1]
                if not is_station_list(name) and not is_source_name(name):
                    continue
                version = ObjectVersion(str(listed["ETag"]).strip('"'), int(listed["Size"]))
                found.append(S3Object(bucket, key, station_id_for(name), version, s3))
    except Exception as exc:
        raise SourceError(
            f"source {spec!r}: cannot list bucket {bucket!r}: {aws.describe(exc, 'the bucket')}"
        ) from None
    return found


def object_at(spec: str, station_id: str, client: Any = None) -> S3Object:
    """The one object ``s3://bucket/key`` names, as a source of ``station_id``'s content.

    Found by listing its key rather than by HeadObject: the same permission and the same
    ETag as a prefix's listing, and a missing bucket is told apart from a missing key.
    """
    bucket, key = parse_uri(spec)
    if not key or key.endswith("/"):
        raise SourceError(f"source {spec!r}: no object key (expected s3://BUCKET/KEY)")
    s3 = client if client is not None else client_for(bucket)
    try:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except Exception as exc:
        raise SourceError(
            f"source {spec!r}: cannot list bucket {bucket!r}: {aws.describe(exc, 'the bucket')}"
        ) from None
    # Keys are listed in order and a key comes before every longer key it prefixes.
    for listed in page.get("Contents", []):
        if listed["Key"] == key:
            version = ObjectVersion(str(listed["ETag"]).strip('"'), int(listed["Size"]))
            return S3Object(bucket, key, station_id, version, s3)
    raise SourceError(f"source {spec!r}: no such object in bucket {bucket!r}")
