"""Compute engines: DuckDB in-process (default); Spark later, as an optional extra."""
