"""The file formats wxhub reads, and the one place that picks a file's format.

Each format is a module that turns the bytes of one source file (or of one chunk of whole
lines of a big file) into the loader's rows, rejects and counts (:class:`ParsedFile`):

* ``wx``: the seed's format, one station per file named after it (:mod:`.wx`);
* ``ghcn-csv``: GHCN-Daily CSV, by station or by year (:mod:`.ghcn_csv`);
* ``ghcn-dly``: GHCN-Daily fixed-width ``.dly`` (:mod:`.ghcn_dly`).

The format is recognised from the content, per file (:func:`sniff`); ``--format`` forces
one. Sources deliver bytes, the loader writes rows: neither knows the format.
"""

from __future__ import annotations

from typing import Final, Literal

from wxhub.ingestion import digests
from wxhub.ingestion.formats import ghcn_csv, ghcn_dly, wx
from wxhub.ingestion.rows import ParsedFile, PayloadFormat, with_payload
from wxhub.ingestion.selection import StationFilter

Format = Literal["wx", "ghcn-csv", "ghcn-dly"]
FORMATS: Final[tuple[Format, ...]] = ("wx", "ghcn-csv", "ghcn-dly")
# Formats whose lines carry their station: a big file of them is read in chunks, and a run's
# station selection applies to their lines.
CHUNKED: Final[frozenset[Format]] = frozenset({"ghcn-csv", "ghcn-dly"})
# How much of a file the sniffer looks at: a few lines of any format.
SNIFF_BYTES = 4096
_BOM = b"\xef\xbb\xbf"


def sniff(head: bytes, name: str) -> Format:
    """The format of a file from its first bytes; the file name's extension when the
    content says nothing (empty, or garbage the format's own parser will reject)."""
    text = head.removeprefix(_BOM).lstrip(b"\r\n\t ")
    first = text.split(b"\n", 1)[0].rstrip(b"\r")
    if first == ghcn_csv.HEADER or ghcn_csv.SIGNATURE.match(first):
        return "ghcn-csv"
    if ghcn_dly.SIGNATURE.match(first):
        return "ghcn-dly"
    if wx.SIGNATURE.match(first):
        return "wx"
    return by_extension(name)


def by_extension(name: str) -> Format:
    """The format a file name suggests (``.csv``, ``.dly``, else the wx format's ``.txt``)."""
    stem = name.removesuffix(".gz")
    if stem.endswith(".csv"):
        return "ghcn-csv"
    if stem.endswith(".dly"):
        return "ghcn-dly"
    return "wx"


def parse(
    data: bytes,
    fmt: Format,
    *,
    name_station: str,
    selection: StationFilter | None = None,
    first_line_no: int = 1,
) -> ParsedFile:
    """Parse ``data`` in format ``fmt``. ``name_station`` is the station the file's name
    gives (the wx format's only source of it); ``selection`` keeps some stations' lines."""
    if fmt == "ghcn-csv":
        return ghcn_csv.parse(data, selection=selection, first_line_no=first_line_no)
    if fmt == "ghcn-dly":
        return ghcn_dly.parse(data, selection=selection, first_line_no=first_line_no)
    if selection is not None and not selection.accepts(name_station):
        return ParsedFile(name_station, lines_read=0)
    return wx.parse(data, name_station)


def parse_for_loading(
    data: bytes,
    fmt: Format,
    payload_format: PayloadFormat,
    *,
    name_station: str,
    selection: StationFilter | None = None,
    first_line_no: int = 1,
    digest: bool = False,
) -> ParsedFile:
    """Parse, and make the loader's payload too: the whole job of a parser worker process.
    With ``digest``, also sum the lines' digests (:func:`~wxhub.ingestion.digests.chunk_digests`:
    a big file's first load records them)."""
    parsed = parse(
        data,
        fmt,
        name_station=name_station,
        selection=selection,
        first_line_no=first_line_no,
    )
    if digest:
        parsed.line_digests = digests.chunk_digests(data)
    return with_payload(parsed, payload_format)


def parse_stations_for_loading(
    data: bytes,
    fmt: Format,
    payload_format: PayloadFormat,
    *,
    stations: frozenset[str],
    name_station: str,
    selection: StationFilter | None = None,
    first_line_no: int = 1,
) -> ParsedFile:
    """:func:`parse_for_loading` of only the lines of ``stations`` (groups of
    :mod:`~wxhub.ingestion.digests`) in a chunk of a big file being reloaded: the other lines
    did not change since its last load. A chunk with lines to reject is parsed again with the
    other lines made empty, so each reject names its line in the file."""
    kept, left_out = digests.lines_of(data, stations)
    parsed = parse(
        kept, fmt, name_station=name_station, selection=selection, first_line_no=first_line_no
    )
    if parsed.rejects:
        blanked, _ = digests.lines_of(data, stations, blank=True)
        parsed = parse(
            blanked,
            fmt,
            name_station=name_station,
            selection=selection,
            first_line_no=first_line_no,
        )
    header = fmt == "ghcn-csv" and first_line_no == 1 and data.startswith(ghcn_csv.HEADER)
    if header and not kept.startswith(ghcn_csv.HEADER):
        left_out -= 1  # the header line is not a record, parsed or not
    parsed.lines_unchanged = left_out
    return with_payload(parsed, payload_format)
