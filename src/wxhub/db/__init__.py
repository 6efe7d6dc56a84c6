"""Table definitions, engine creation and Alembic migrations."""
