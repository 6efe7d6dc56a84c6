"""Query parameters and response bodies, as pydantic models.

The routes validate their parameters with these, and the OpenAPI document is generated from
them, so the documentation cannot drift from what the code accepts.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
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


class StationsQuery(PageQuery):
    pass


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


class Station(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "station_id": "USC00110072",
                    "first_date": "1985-01-01",
                    "last_date": "2014-12-31",
                    "observations": 10865,
                }
            ]
        }
    )

    station_id: str
    first_date: dt.date | None
    last_date: dt.date | None
    observations: int


class ObservationPage(BaseModel):
    data: list[Observation]
    pagination: Pagination


class YearlyStatsPage(BaseModel):
    data: list[YearlyStats]
    pagination: Pagination


class StationPage(BaseModel):
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
