"""Local copies of big objects: an object store's by-year file is downloaded once per run.

A big file is read up to three times in a run: hashed (is it new?), then for a reload its
station digests (which stations changed?), then parsed. From S3 each read is a download of the
whole object, a few hundred megabytes for a recent year's ``csv.gz``. So an object listed
bigger than :data:`COPY_OVER_BYTES` is copied, as stored (still compressed), into a temporary
folder of the run's on its first read, with the ETag the listing gave (a new version uploaded
meanwhile fails the copy, as it fails a read), and every read of the run reads that copy. The
copy is deleted once its file is done, and the folder with whatever is left at the end of the
run, failed or not. The local disk needs room for the biggest such object (``TMPDIR``; on
Fargate, the task's ephemeral storage).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from wxhub.ingestion.sources import LocalFile, ObjectVersion, SourceFile

# Objects listed bigger than this (as stored) are copied: a by-station file is a few hundred
# kilobytes, a by-year file of a recent year a few hundred megabytes.
COPY_OVER_BYTES = 8 * 1024 * 1024


@runtime_checkable
class Downloadable(Protocol):
    """A source whose stored bytes can be read as they are (not decompressed)."""

    def stored_pieces(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class LocalCopy:
    """An object read from its local copy; everything else (URI, name, version) is the
    object's, so the ledgers record the object, not the copy."""

    original: SourceFile
    path: Path

    @property
    def uri(self) -> str:
        return self.original.uri

    @property
    def name(self) -> str:
        return self.original.name

    @property
    def station_id(self) -> str | None:
        return self.original.station_id

    @property
    def version(self) -> ObjectVersion | None:
        return self.original.version

    def open(self) -> BinaryIO:
        # The copy's name ends with the object's, so it reads as a local file of that name.
        return self._local().open()

    def read_bytes(self) -> bytes:
        return self._local().read_bytes()

    def _local(self) -> LocalFile:
        return LocalFile(self.path, self.original.station_id)


class Spool:
    """The run's local copies, in a temporary folder made on first use."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def wants(self, source: SourceFile) -> bool:
        """Whether ``source`` is an object big enough to be read from a local copy."""
        version = source.version
        return (
            version is not None
            and version.size_bytes > COPY_OVER_BYTES
            and isinstance(source, Downloadable)
        )

    def copy(self, source: SourceFile) -> LocalCopy:
        """``source`` downloaded once. OSError naming the cause when the object cannot be
        read (as its own reads say) or the copy cannot be written."""
        if not isinstance(source, Downloadable):
            raise TypeError(f"{source.uri} cannot be copied as stored")
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="wxhub-copies-")
        target, path = self._new_file(Path(self._folder.name), source.name)
        try:
            with target:
                copied = sum(_write(target, piece, path) for piece in source.stored_pieces())
            listed = source.version.size_bytes if source.version is not None else copied
            if copied != listed:
                # A body cut short must not pass for the object: it would be hashed and
                # loaded as if whole.
                raise OSError(f"the download ended after {copied} of its {listed} bytes")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return LocalCopy(source, path)

    @staticmethod
    def _new_file(folder: Path, name: str) -> tuple[BinaryIO, Path]:
        handle, path = tempfile.mkstemp(dir=folder, suffix=f"-{name}")
        # Unbuffered: every write reaches the disk, so no flush can fail at close.
        return os.fdopen(handle, "wb", buffering=0), Path(path)

    @staticmethod
    def release(source: SourceFile) -> None:
        """Delete ``source``'s copy if it is one: its file is done."""
        if isinstance(source, LocalCopy):
            source.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


def _write(target: BinaryIO, piece: bytes, path: Path) -> int:
    """Write all of ``piece`` (an unbuffered write may take only part: a disk filling up
    takes what fits, then refuses the rest); its length."""
    rest = memoryview(piece)
    try:
        while rest:
            rest = rest[target.write(rest) :]
    except OSError as exc:
        raise OSError(
            f"cannot copy it to local disk at {path.parent} ({exc.strerror or exc}); "
            "set TMPDIR to a folder with room for it"
        ) from None
    return len(piece)
