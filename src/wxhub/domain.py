"""The facts of the domain that several layers share: station ids and plausible values.

Kept free of imports so a parser worker process starts in milliseconds.
"""

from __future__ import annotations

import re
import zlib

MISSING = -9999  # NOAA's marker for a missing value

STATION_ID_MAX_LENGTH = 20
# GHCN ids are 11 characters of capitals and digits (USC00110072); allow a little more, but
# nothing that could be confused with a path, a glob or SQL.
STATION_ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{STATION_ID_MAX_LENGTH}}}")

# Plausibility limits, in the stored units. Far wider than the data (max -34.4..46.7 degC,
# min down to -45.0 degC, 429.5 mm of rain in a day) and than the world records
# (-89.2..56.7 degC; about 1,825 mm of rain in a day): they reject typos and garbage, never
# a real extreme.
TEMP_TENTHS_C_MIN = -900
TEMP_TENTHS_C_MAX = 600
PRECIPITATION_TENTHS_MM_MIN = 0
PRECIPITATION_TENTHS_MM_MAX = 20000

# GHCN-Daily station ids: the 2-letter FIPS country code, a network code, then 8 characters.
GHCN_STATION_ID_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{9}")
# Station elevations in metres (ghcnd-stations.txt writes -999.9 for a missing one). Like the
# limits above, they reject typos, never a real station: the lowest land is the Dead Sea shore
# (-430 m), the highest summit 8,849 m.
ELEVATION_M_MIN = -500
ELEVATION_M_MAX = 9000


def shard_of(station_id: str, shards: int) -> int:
    """The shard (1..``shards``) of a station: CRC-32 of its id, the same on every machine.

    Ingestion takes a shard's files by it, and the aggregation of a sharded run takes the
    same shard's station-years, so tasks running side by side never touch one another's.
    """
    return zlib.crc32(station_id.encode("ascii", "replace")) % shards + 1
