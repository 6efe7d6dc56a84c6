"""Where station files come from: a folder, a single file, a glob, or an S3 prefix.

A source resolves to :class:`SourceFile` objects. Each knows the station its name gives
(``USC00110072.txt``, ``.csv``, ``.dly``, each maybe ``.gz``), or that its name gives none
(a GHCN-Daily by-year file, ``2024.csv.gz``, holds every station), a URI for logs and the
ledger, and how to read its content, decompressed, whole or as a stream. Reading is separate
from listing so that a file that cannot be read fails alone, at load time, with the others
still loading. An S3 object also knows, from the listing, its :class:`ObjectVersion` (ETag
and size): enough for the ledger to skip it without reading it.

NOAA's station metadata, ``ghcnd-stations.txt``, found in a folder or prefix, is listed apart
(:attr:`Sources.station_metadata`); NOAA's other documentation and metadata files
(``readme.txt``, ``ghcnd-inventory.txt``, ...) are left out.

:func:`select_shard` gives one task of N its stable share of the files (``--shard K/N``).
"""

from __future__ import annotations

import glob
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from wxhub.domain import STATION_ID_PATTERN, shard_of
from wxhub.ingestion.stations import STATION_LIST_NAME, is_station_list

SUFFIXES = (".txt.gz", ".txt", ".csv.gz", ".csv", ".dly.gz", ".dly")
# A file read whole, as every station's file is (the real ones are a few MB at most); a
# bigger one (a GHCN-Daily by-year file, about a gigabyte) is streamed in chunks instead.
MAX_FILE_BYTES = 32 * 1024 * 1024
# NOAA's documentation and metadata beside the data: not station files.
_NOT_STATION_FILES = re.compile(r"(ghcnd-.*|readme.*|status.*)\.txt(\.gz)?", re.IGNORECASE)
# A by-year file is named after its year: its lines carry their stations.
_BY_YEAR = re.compile(r"[0-9]{4}\.csv(\.gz)?")


class SourceError(ValueError):
    """A SOURCE argument that cannot be resolved; the message names it."""


@dataclass(frozen=True)
class ObjectVersion:
    """What a listing says of an object: unchanged ETag and size mean unchanged content."""

    etag: str
    size_bytes: int


class SourceFile(Protocol):
    """One station file (or a file of many stations), wherever it lives."""

    @property
    def uri(self) -> str: ...

    @property
    def name(self) -> str:
        """The file name, e.g. ``USC00110072.csv.gz``."""
        ...

    @property
    def station_id(self) -> str | None:
        """The station the name gives; None for a file of many stations (by year)."""
        ...

    @property
    def version(self) -> ObjectVersion | None:
        """The listed version of an object store's file; None for a local file."""
        ...

    def read_bytes(self) -> bytes:
        """The decompressed content, at most :data:`MAX_FILE_BYTES`. Raises OSError (or a
        subclass) when it cannot be read or is bigger (then it is to be streamed)."""
        ...

    def open(self) -> BinaryIO:
        """The decompressed content as a stream, for files of any size. Its reads raise
        OSError (or a subclass) when the file cannot be read."""
        ...


def stem_of(name: str) -> str:
    """The file name without its known extension (``2024.csv.gz`` -> ``2024``)."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class LocalFile:
    """A station file on a local (or mounted) file system, plain or gzip-compressed."""

    path: Path
    station_id: str | None

    @property
    def uri(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version(self) -> None:
        return None  # local files are recognised by their content hash alone

    def open(self) -> BinaryIO:
        raw = self.path.open("rb")
        if not self.path.name.endswith(".gz"):
            return raw
        return cast(BinaryIO, GzipReader(raw))

    def read_bytes(self) -> bytes:
        with self.open() as stream:
            return read_whole(stream)


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end (a network stream may return
    less than asked for at a time)."""
    parts = []
    left = size
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_whole(stream: BinaryIO) -> bytes:
    """All of a station file's content; OSError if it is bigger than a file read whole."""
    data = read_up_to(stream, MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(f"larger than {MAX_FILE_BYTES} bytes: to be read as a stream")
    return data


class GzipReader(io.RawIOBase):
    """A gzip stream whose decompression errors are OSError with a clear message (gzip's own
    are EOFError, zlib.error or BadGzipFile), so a corrupt file fails alone like an
    unreadable one."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return self._gzip.readinto(buffer)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise OSError(f"not a valid gzip file ({exc})") from exc

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gzip.read(size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise OSError(f"not a valid gzip file ({exc})") from exc

    def close(self) -> None:
        try:
            self._gzip.close()
        finally:
            self._raw.close()
            super().close()


def station_id_for(name: str) -> str | None:
    """The station id a file name stands for, or None if it is not a station file name
    (a by-year file is a source, but of many stations: see :func:`is_source_name`)."""
    if _NOT_STATION_FILES.fullmatch(name) or _BY_YEAR.fullmatch(name):
        return None
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            station_id = name[: -len(suffix)]
            return station_id if STATION_ID_PATTERN.fullmatch(station_id) else None
    return None


def is_source_name(name: str) -> bool:
    """Whether a file of this name is read: a station's file or a by-year file."""
    return station_id_for(name) is not None or _BY_YEAR.fullmatch(name) is not None


@dataclass
class Sources:
    """What SOURCE arguments resolve to: data files, and NOAA station metadata files."""

    files: list[SourceFile] = field(default_factory=list)
    station_metadata: list[SourceFile] = field(default_factory=list)


def resolve(specs: Iterable[str]) -> Sources:
    """Expand SOURCE arguments into files, in argument order, each folder sorted.

    A file named twice (say, by its folder and by itself) is read once.
    """
    seen: set[str] = set()
    found = Sources()
    for spec in specs:
        for source_file in _resolve_one(spec):
            if source_file.uri in seen:
                continue
            seen.add(source_file.uri)
            if is_station_list(source_file.name):
                found.station_metadata.append(source_file)
            else:
                found.files.append(source_file)
    return found


def resolve_sources(specs: Iterable[str]) -> list[SourceFile]:
    """The data files of SOURCE arguments (see :func:`resolve`)."""
    return resolve(specs).files


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
    are applied in order by one task, and N tasks together take every file exactly once. A
    file of many stations goes to every shard: each keeps its own stations' lines.
    """
    if not 1 <= shard <= shards:
        raise ValueError(f"shard {shard} is not in 1..{shards}")
    return [f for f in files if f.station_id is None or shard_of(f.station_id, shards) == shard]


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
        if is_station_list(path.name) or is_source_name(path.name):
            yield LocalFile(path.resolve(), station_id_for(path.name))
        elif not skip_others:
            raise SourceError(
                f"source {str(path)!r}: not a station file (expected STATION.txt, .csv or "
                ".dly, maybe .gz, the station id made of letters, digits, '_' or '-', at "
                "most 20 characters; YEAR.csv for a GHCN-Daily by-year file; or "
                f"{STATION_LIST_NAME})"
            )
