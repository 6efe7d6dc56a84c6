"""Sources, parsing and validation, bulk loading: the ingestion half of the nightly job."""
