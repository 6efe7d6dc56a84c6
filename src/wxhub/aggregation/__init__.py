"""Yearly statistics per station, computed in the database."""
