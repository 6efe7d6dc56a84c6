"""Where station files come from: a folder, a single file, a glob, or an S3 prefix.

A source resolves to :class:`SourceFile` objects. Each knows its station id (the file name
without ``.txt`` / ``.txt.gz``), a URI for logs and the ledger, and how to read its content,
decompressed. Reading is separate from listing so that a file that cannot be read fails alone,
at load time, with the others still loading. An S3 object also knows, from the listing, its
:class:`ObjectVersion` (ETag and size): enough for the ledger to skip it without reading it.

:func:`select_shard` gives one task of N its stable share of the files (``--shard K/N``).
"""

from __future__ import annotations

import glob
import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wxhub.domain import STATION_ID_PATTERN, shard_of

SUFFIXES = (".txt.gz", ".txt")
# Readers guard against a decompression bomb: the real files are about 270 KB.
MAX_FILE_BYTES = 256 * 1024 * 1024


class SourceError(ValueError):
    """A SOURCE argument that cannot be resolved; the message names it."""


@dataclass(frozen=True)
class ObjectVersion:
    """What a listing says of an object: unchanged ETag and size mean unchanged content."""

    etag: str
    size_bytes: int


class SourceFile(Protocol):
    """One station file, wherever it lives."""

    @property
    def uri(self) -> str: ...

    @property
    def station_id(self) -> str: ...

    @property
    def version(self) -> ObjectVersion | None:
        """The listed version of an object store's file; None for a local file."""
        ...

    def read_bytes(self) -> bytes:
        """The decompressed content. Raises OSError (or a subclass) when it cannot be read."""
        ...


@dataclass(frozen=True)
class LocalFile:
    """A station file on a local (or mounted) file system, plain or gzip-compressed."""

    path: Path
    station_id: str

    @property
    def uri(self) -> str:
        return str(self.path)

    @property
    def version(self) -> None:
        return None  # local files are recognised by their content hash alone

    def read_bytes(self) -> bytes:
        if self.path.name.endswith(".gz"):
            try:
                with gzip.open(self.path, "rb") as stream:
                    data = stream.read(MAX_FILE_BYTES + 1)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise OSError(f"not a valid gzip file ({exc})") from exc
        else:
            with self.path.open("rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise OSError(f"larger than {MAX_FILE_BYTES} bytes: not a station file")
        return data


def station_id_for(name: str) -> str | None:
    """The station id a file name stands for, or None if it is not a station file name."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            station_id = name[: -len(suffix)]
            return station_id if STATION_ID_PATTERN.fullmatch(station_id) else None
    return None


def resolve_sources(specs: Iterable[str]) -> list[SourceFile]:
    """Expand SOURCE arguments into station files, in argument order, each folder sorted.

    A file named twice (say, by its folder and by itself) is read once.
    """
    seen: set[str] = set()
    files: list[SourceFile] = []
    for spec in specs:
        for source_file in _resolve_one(spec):
            if source_file.uri not in seen:
                seen.add(source_file.uri)
                files.append(source_file)
    return files


def resolve_file(spec: str, subject: str) -> SourceFile:
    """The one file SOURCE names (a path, plain or ``.gz``, or ``s3://bucket/key``), read as
    ``subject``'s content whatever its name (the station list is one file, not a station's)."""
    if spec.startswith("s3://"):
        from wxhub.ingestion import s3  # noqa: PLC0415  (boto3 only for S3 sources)

        return s3.object_at(spec, subject)
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise SourceError(
            f"source {spec!r}: the {scheme}:// scheme is not supported "
            "(a file path and s3://bucket/key are)"
        )
    path = Path(spec)
    if path.is_dir():
        raise SourceError(f"source {spec!r}: is a folder; give the file itself")
    if not path.is_file():
        raise SourceError(f"source {spec!r}: no such file")
    return LocalFile(path.resolve(), subject)


def select_shard(files: Sequence[SourceFile], shard: int, shards: int) -> list[SourceFile]:
    """The files of shard ``shard`` (1..``shards``), chosen by a stable hash of the station id.

    A station always lands on the same shard whatever the order or the listing, so its files
    are applied in order by one task, and N tasks together take every file exactly once.
    """
    if not 1 <= shard <= shards:
        raise ValueError(f"shard {shard} is not in 1..{shards}")
    return [f for f in files if shard_of(f.station_id, shards) == shard]


def _resolve_one(spec: str) -> Iterator[SourceFile]:
    if spec.startswith("s3://"):
        from wxhub.ingestion import s3  # noqa: PLC0415  (boto3 only for S3 sources)

        yield from s3.list_station_objects(spec)
        return
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise SourceError(
            f"source {spec!r}: the {scheme}:// scheme is not supported "
            "(folders, files, globs and s3:// prefixes are)"
        )
    path = Path(spec)
    if path.is_dir():
        yield from _station_files(sorted(path.iterdir()), skip_others=True)
    elif path.is_file():
        yield from _station_files([path], skip_others=False)
    elif glob.has_magic(spec):
        matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
        found = list(_station_files([p for p in matches if p.is_file()], skip_others=True))
        if not found:
            raise SourceError(f"source {spec!r}: the pattern matches no station file")
        yield from found
    else:
        raise SourceError(f"source {spec!r}: no such file or folder")


def _station_files(paths: Iterable[Path], *, skip_others: bool) -> Iterator[LocalFile]:
    for path in paths:
        if path.is_dir():
            continue
        station_id = station_id_for(path.name)
        if station_id is not None:
            yield LocalFile(path.resolve(), station_id)
        elif not skip_others:
            raise SourceError(
                f"source {str(path)!r}: not a station file (expected STATION.txt or "
                "STATION.txt.gz, the station id made of letters, digits, '_' or '-', "
                "at most 20 characters)"
            )
