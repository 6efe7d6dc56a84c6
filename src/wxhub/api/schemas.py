"""Query parameters and response bodies, as pydantic models.

The routes validate their parameters with these, and the OpenAPI document is generated from
them, so the documentation cannot drift from what the code accepts.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wxhub.domain import STATION_ID_MAX_LENGTH, STATION_ID_PATTERN

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_STATIONS_PER_QUERY = 200
MIN_YEAR, MAX_YEAR = 1763, 2100
_STATION_LIST_MAX = MAX_STATIONS_PER_QUERY * (STATION_ID_MAX_LENGTH + 1)
_ONE_ID = f"[A-Za-z0-9_-]{{1,{STATION_ID_MAX_LENGTH}}}"
_STATION_LIST_PATTERN = f"^{_ONE_ID}(,{_ONE_ID}){{0,{MAX_STATIONS_PER_QUERY - 1}}}$"


_JSON_SCHEMAS: dict[Any, dict[str, Any]] = {}


class PageQuery(BaseModel):
    """The pagination parameters every list takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Made once per model: flask-openapi3 asks for it on every request, and building it
        cost 2.6 ms of a 4 ms request.

        The per-request call (no arguments) only reads the schema, so it gets the stored
        one; the document generator (which passes arguments, once at start-up) gets a copy
        it may change. Copying on every request cost 0.3 ms."""
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _JSON_SCHEMAS:
            _JSON_SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        schema = _JSON_SCHEMAS[key]
        return copy.deepcopy(schema) if args or kwargs else schema

    page: int = Field(1, ge=1, le=10_000_000, description="Page number, from 1.")
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page (at most 1000)."
    )
    cursor: str | None = Field(
        None,
        max_length=512,
        description="Opaque position from a `next` or `prev` link; overrides `page`.",
    )

    def filters(self) -> dict[str, Any]:
        """The filters as they appear in links (everything but the paging)."""
        values = self.model_dump(mode="json", exclude={"page", "page_size", "cursor"})
        return {k: v for k, v in values.items() if v is not None}


def _station_ids(value: str | None) -> str | None:
    if value is None:
        return None
    ids = value.split(",")
    if len(ids) > MAX_STATIONS_PER_QUERY:
        raise ValueError(f"at most {MAX_STATIONS_PER_QUERY} station ids per request")
    for station_id in ids:
        if not STATION_ID_PATTERN.fullmatch(station_id):
            raise ValueError(
                f"{station_id[:30]!r} is not a station id (letters, digits, '_' or '-', "
                f"1 to {STATION_ID_MAX_LENGTH} characters; several separated by commas)"
            )
    return ",".join(dict.fromkeys(ids))


class CsvCapable(PageQuery):
    format: Literal["json", "csv"] | None = Field(
        None,
        description="csv: every matching row as CSV, without pagination (as Accept: text/csv).",
    )

    def filters(self) -> dict[str, Any]:
        values = super().filters()
        values.pop("format", None)
        return values


class StationFilter(CsvCapable):
    station_id: str | None = Field(
        None,
        max_length=_STATION_LIST_MAX,
        # Documented here, checked by the validator below, which says which id is wrong.
        json_schema_extra={"pattern": _STATION_LIST_PATTERN},
        description="One station id, or several separated by commas, e.g. USC00110072.",
    )

    @field_validator("station_id")
    @classmethod
    def _check_station_ids(cls, value: str | None) -> str | None:
        return _station_ids(value)

    def station_ids(self) -> list[str] | None:
        return None if self.station_id is None else self.station_id.split(",")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class WeatherQuery(StationFilter):
    date: dt.date | None = Field(None, description="One day, YYYY-MM-DD.")
    start_date: dt.date | None = Field(None, description="First day, inclusive, YYYY-MM-DD.")
    end_date: dt.date | None = Field(None, description="Last day, inclusive, YYYY-MM-DD.")

    @field_validator("date", "start_date", "end_date", mode="before")
    @classmethod
    def _iso_dates_only(cls, value: object) -> object:
        # pydantic would also take '0.0' or '1700000000' as a Unix time: a client that
        # sends those has made a mistake, and should hear so rather than get 1970.
        if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
            raise ValueError(f"{value[:40]!r} is not a date in YYYY-MM-DD form")
        return value

    @model_validator(mode="after")
    def _dates_agree(self) -> WeatherQuery:
        if self.date is not None and (self.start_date or self.end_date):
            raise ValueError("date cannot be combined with start_date or end_date")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        return self

    def date_range(self) -> tuple[dt.date | None, dt.date | None]:
        if self.date is not None:
            return self.date, self.date
        return self.start_date, self.end_date


class StatsQuery(StationFilter):
    year: int | None = Field(None, ge=MIN_YEAR, le=MAX_YEAR, description="One year.")
    start_year: int | None = Field(None, ge=MIN_YEAR, le=MAX_YEAR, description="First year.")
    end_year: int | None = Field(None, ge=MIN_YEAR, le=MAX_YEAR, description="Last year.")

    @model_validator(mode="after")
    def _years_agree(self) -> StatsQuery:
        if self.year is not None and (self.start_year or self.end_year):
            raise ValueError("year cannot be combined with start_year or end_year")
        if self.start_year and self.end_year and self.start_year > self.end_year:
            raise ValueError("start_year is after end_year")
        return self

    def year_range(self) -> tuple[int | None, int | None]:
        if self.year is not None:
            return self.year, self.year
        return self.start_year, self.end_year


# Two-letter codes: US and Canadian states and provinces (IL, ON) and GHCN's FIPS country
# codes (US, CA). Each value is one leg of the page query (see listing.py), hence the limit.
MAX_CODES_PER_FILTER = 60
_CODE = re.compile(r"[A-Za-z]{2}")
_CODE_LIST_PATTERN = f"^[A-Za-z]{{2}}(,[A-Za-z]{{2}}){{0,{MAX_CODES_PER_FILTER - 1}}}$"
MAX_NAME_QUERY_LENGTH = 30  # NOAA's names are at most 30 characters
_BBOX_EXAMPLE = "-91.5,36.9,-87.5,42.5"
_BBOX_LIMITS = (("MIN_LON", 180), ("MIN_LAT", 90), ("MAX_LON", 180), ("MAX_LAT", 90))


def _codes(value: str | None, examples: tuple[str, str]) -> str | None:
    """Upper-cased and without repeats: the stored codes are capitals, and comparing them
    as given would differ between MySQL (case-insensitive) and SQLite."""
    if value is None:
        return None
    codes = value.split(",")
    if len(codes) > MAX_CODES_PER_FILTER:
        raise ValueError(f"at most {MAX_CODES_PER_FILTER} codes per request")
    for code in codes:
        if not _CODE.fullmatch(code):
            raise ValueError(
                f"{code[:10]!r} is not a two-letter code (e.g. {examples[0]}; "
                f"several separated by commas: {','.join(examples)})"
            )
    return ",".join(dict.fromkeys(code.upper() for code in codes))


def _bbox(value: str | None) -> str | None:
    if value is None:
        return None
    parts = value.split(",")
    allowed = f"MIN_LON,MIN_LAT,MAX_LON,MAX_LAT in degrees, e.g. {_BBOX_EXAMPLE}"
    if len(parts) != 4:
        raise ValueError(f"four numbers are needed ({allowed}); got {len(parts)}")
    numbers = []
    for (name, limit), part in zip(_BBOX_LIMITS, parts, strict=True):
        try:
            number = Decimal(part.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise ValueError(f"{name} {part[:20]!r} is not a number ({allowed})")
        if abs(number) > limit:
            raise ValueError(f"{name} {part.strip()} is outside -{limit}..{limit} ({allowed})")
        numbers.append(number)
    min_lon, min_lat, max_lon, max_lat = numbers
    if min_lon > max_lon:
        raise ValueError(f"MIN_LON {min_lon} is east of MAX_LON {max_lon} ({allowed})")
    if min_lat > max_lat:
        raise ValueError(f"MIN_LAT {min_lat} is north of MAX_LAT {max_lat} ({allowed})")
    return value


class StationsQuery(PageQuery):
    """The station list's filters. Any of them keeps only the stations with metadata."""

    state: str | None = Field(
        None,
        max_length=MAX_CODES_PER_FILTER * 4,  # the validator counts the codes exactly
        json_schema_extra={"pattern": _CODE_LIST_PATTERN, "example": "IL,IN"},
        description="A US state or Canadian province, or several separated by commas (IL,IN).",
    )
    country: str | None = Field(
        None,
        max_length=MAX_CODES_PER_FILTER * 4,  # the validator counts the codes exactly
        json_schema_extra={"pattern": _CODE_LIST_PATTERN, "example": "US"},
        description="GHCN's two-letter country code, the station id's first two letters "
        "(US, CA); several separated by commas.",
    )
    bbox: str | None = Field(
        None,
        max_length=100,
        json_schema_extra={"example": _BBOX_EXAMPLE},
        description="Stations inside MIN_LON,MIN_LAT,MAX_LON,MAX_LAT (degrees, edges "
        "included; longitudes -180..180, latitudes -90..90, each minimum at most its maximum).",
    )
    q: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAME_QUERY_LENGTH,
        json_schema_extra={"example": "chicago"},
        description="Part of the station's name, any case (printable ASCII, as NOAA writes "
        "names; % and _ are plain characters).",
    )

    @field_validator("state")
    @classmethod
    def _check_states(cls, value: str | None) -> str | None:
        return _codes(value, ("IL", "IN"))

    @field_validator("country")
    @classmethod
    def _check_countries(cls, value: str | None) -> str | None:
        return _codes(value, ("US", "CA"))

    @field_validator("bbox")
    @classmethod
    def _check_bbox(cls, value: str | None) -> str | None:
        return _bbox(value)

    @field_validator("q")
    @classmethod
    def _check_name_query(cls, value: str | None) -> str | None:
        # MySQL's LOWER folds every letter, SQLite's only ASCII ones: ASCII alone is
        # matched alike on both (and NOAA's names are ASCII).
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ValueError("only printable ASCII characters, as in NOAA's station names")
        return value

    def states(self) -> list[str]:
        return [] if self.state is None else self.state.split(",")

    def countries(self) -> list[str]:
        return [] if self.country is None else self.country.split(",")

    def bounds(self) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        """MIN_LON, MIN_LAT, MAX_LON, MAX_LAT, or None."""
        if self.bbox is None:
            return None
        min_lon, min_lat, max_lon, max_lat = (Decimal(p.strip()) for p in self.bbox.split(","))
        return min_lon, min_lat, max_lon, max_lat


class StationPath(BaseModel):
    station_id: str = Field(
        max_length=STATION_ID_MAX_LENGTH,
        pattern=f"^{_ONE_ID}$",
        json_schema_extra={"example": "USC00110072"},
        description="The station's id.",
    )


class Pagination(BaseModel):
    page: int
    page_size: int
    total: int = Field(description="Items matching the filters, over all pages.")
    next: str | None = Field(description="Relative URL of the next page; null on the last.")
    prev: str | None = Field(description="Relative URL of the previous page; null on the first.")


class Observation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "station_id": "USC00110072",
                    "date": "1985-01-01",
                    "max_temp_c": -2.2,
                    "min_temp_c": -12.8,
                    "precipitation_mm": 9.4,
                }
            ]
        }
    )

    station_id: str = Field(examples=["USC00110072"])
    date: dt.date
    max_temp_c: float | None = Field(description="Maximum temperature, degrees Celsius.")
    min_temp_c: float | None = Field(description="Minimum temperature, degrees Celsius.")
    precipitation_mm: float | None = Field(description="Precipitation, millimetres.")


class YearlyStats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "station_id": "USC00110072",
                    "year": 1985,
                    "avg_max_temp_c": 15.33,
                    "avg_min_temp_c": 4.33,
                    "total_precipitation_cm": 78.01,
                    "max_temp_days": 365,
                    "min_temp_days": 363,
                    "precipitation_days": 365,
                }
            ]
        }
    )

    station_id: str
    year: int
    avg_max_temp_c: float | None
    avg_min_temp_c: float | None
    total_precipitation_cm: float | None
    max_temp_days: int = Field(description="Days with a maximum temperature.")
    min_temp_days: int = Field(description="Days with a minimum temperature.")
    precipitation_days: int = Field(description="Days with a precipitation value.")


# USC00110072 as the vendored data has it before the station metadata is loaded; O'Hare
# as ghcnd-stations.txt describes it, a station known from its metadata alone.
STATION_EXAMPLE: dict[str, Any] = {
    "station_id": "USC00110072",
    "first_date": "1985-01-01",
    "last_date": "2014-12-31",
    "observations": 10865,
    "name": None,
    "latitude": None,
    "longitude": None,
    "elevation_m": None,
    "state": None,
}
STATION_DETAIL_EXAMPLE: dict[str, Any] = {
    "station_id": "USW00094846",
    "first_date": None,
    "last_date": None,
    "observations": 0,
    "name": "CHICAGO OHARE INTL AP",
    "latitude": 41.995,
    "longitude": -87.9336,
    "elevation_m": 201.8,
    "state": "IL",
    "country": "US",
    "gsn_flag": None,
    "hcn_crn_flag": None,
    "wmo_id": "72530",
}
_METADATA = "null when the station has no metadata"


class Station(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [STATION_EXAMPLE]})

    station_id: str
    first_date: dt.date | None = Field(description="First day with data; null if none.")
    last_date: dt.date | None = Field(description="Last day with data; null if none.")
    observations: int = Field(description="Days with data.")
    name: str | None = Field(description=f"NOAA's name of the station; {_METADATA}.")
    latitude: float | None = Field(description=f"Degrees north, 4 decimals; {_METADATA}.")
    longitude: float | None = Field(description=f"Degrees east, 4 decimals; {_METADATA}.")
    elevation_m: float | None = Field(
        description=f"Metres above sea level, 1 decimal; null when unknown or {_METADATA}."
    )
    state: str | None = Field(
        description=f"US state or Canadian province; null elsewhere or {_METADATA}."
    )


class StationDetail(Station):
    model_config = ConfigDict(
        json_schema_extra={"examples": [STATION_DETAIL_EXAMPLE]},
        openapi_extra={"example": STATION_DETAIL_EXAMPLE},  # type: ignore[typeddict-unknown-key]
    )

    country: str | None = Field(description=f"GHCN's two-letter country code; {_METADATA}.")
    gsn_flag: str | None = Field(description="GSN when in the GCOS Surface Network.")
    hcn_crn_flag: str | None = Field(
        description="HCN or CRN when in the US Historical Climatology or Climate Reference Network."
    )
    wmo_id: str | None = Field(description="World Meteorological Organization number.")


class ObservationPage(BaseModel):
    data: list[Observation]
    pagination: Pagination


class YearlyStatsPage(BaseModel):
    data: list[YearlyStats]
    pagination: Pagination


class StationPage(BaseModel):
    model_config = ConfigDict(
        openapi_extra={  # type: ignore[typeddict-unknown-key]
            "example": {
                "data": [STATION_EXAMPLE],
                "pagination": {
                    "page": 1,
                    "page_size": 1,
                    "total": 167,
                    "next": "/api/stations?page_size=1&cursor=V1...",
                    "prev": None,
                },
            }
        }
    )

    data: list[Station]
    pagination: Pagination


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Invalid request",
                    "status": 400,
                    "detail": "page_size: Input should be less than or equal to 1000",
                    "parameter": "page_size",
                    "request_id": "1f0c9c1e6a5b4d0e9b0f2a7c3d4e5f60",
                }
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    parameter: str | None = Field(None, description="The query parameter at fault.")
    request_id: str | None = Field(None, description="Quote it when reporting an error.")
