"""wxhub: NOAA daily weather records ingested, deduplicated, aggregated and served."""

__version__ = "0.1.0"
