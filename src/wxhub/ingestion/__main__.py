"""``python -m wxhub.ingestion SOURCE...``: the container's job entry point (``wxhub run``)."""

from wxhub.cli import run

if __name__ == "__main__":
    run.main(prog_name="python -m wxhub.ingestion")
