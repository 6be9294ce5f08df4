"""Fixtures shared with tests/lake: the real nycflights13 CSV and DuckDB over it."""

from tests.lake.conftest import duck, source_csv  # noqa: F401 (fixtures re-exported)
