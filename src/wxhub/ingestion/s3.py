"""S3 sources: ``s3://bucket/prefix/`` is every station object under the prefix.

The listing (ListObjectsV2, paginated) gives each object's key, ETag and size; the station
id comes from the last part of the key, as for a local file name, and other keys are left
out. An object is read only when the loader asks for it, streamed from the GetObject body and
decompressed on the fly for ``.txt.gz`` (nothing is written to disk). The read is
conditional on the listed ETag, so the content read is always the version the ledger records.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

from wxhub import aws
from wxhub.ingestion.sources import (
    MAX_FILE_BYTES,
    ObjectVersion,
    SourceError,
    station_id_for,
)

SCHEME = "s3://"
# S3's own maximum; the tests make it small to exercise the pagination.
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True)
class S3Object:
    """A station file in S3, as the listing described it."""

    bucket: str
    key: str
    station_id: str
    version: ObjectVersion
    client: Any = field(repr=False, compare=False)

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def read_bytes(self) -> bytes:
        """The decompressed content; OSError with the reason when it cannot be read."""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.key, IfMatch=f'"{self.version.etag}"'
            )
            with contextlib.closing(response["Body"]) as body:
                data = _read_limited(body, gzipped=self.key.endswith(".gz"))
        except OSError:
            raise
        except Exception as exc:
            raise OSError(_read_failure(exc)) from None
        if len(data) > MAX_FILE_BYTES:
            raise OSError(f"larger than {MAX_FILE_BYTES} bytes: not a station file")
        return data


def _read_limited(body: Any, *, gzipped: bool) -> bytes:
    if not gzipped:
        return bytes(body.read(MAX_FILE_BYTES + 1))
    try:
        with gzip.GzipFile(fileobj=body, mode="rb") as stream:
            return stream.read(MAX_FILE_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise OSError(f"not a valid gzip file ({exc})") from exc


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


def list_station_objects(spec: str, client: Any = None) -> list[S3Object]:
    """The station objects under the prefix of ``spec``, in key order."""
    bucket, prefix = parse_uri(spec)
    s3 = client if client is not None else aws.client("s3", aws.region_from(os.environ))
    found: list[S3Object] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
        )
        for page in pages:
            for listed in page.get("Contents", []):
                key = str(listed["Key"])
                station_id = station_id_for(key.rsplit("/", 1)[-1])
                if station_id is None:
                    continue
                version = ObjectVersion(str(listed["ETag"]).strip('"'), int(listed["Size"]))
                found.append(S3Object(bucket, key, station_id, version, s3))
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
    s3 = client if client is not None else aws.client("s3", aws.region_from(os.environ))
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
