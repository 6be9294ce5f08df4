"""localaws's Athena: Trino SQL really run by DuckDB over the Glue catalog and moto's S3.

A package in moto's layout:

* :mod:`.models` - the engine: query executions (:class:`LocalExecution`), running one statement
  on DuckDB (SELECT, DDL, CTAS, INSERT), writing results as Athena does;
* :mod:`.sql` - the SQL translation: types (Glue / DuckDB / Athena), statement classification,
  comment and parameter handling, DuckDB and sqlglot errors in Athena's words;
* :mod:`.exceptions` - :class:`AthenaQueryError` and :class:`QueryCancelled`;
* :mod:`.responses` - the API: :func:`install` patches moto's Athena backend and responses,
  :func:`recover_after_restart` fails executions a restart cut off.

What docs/localaws.md documents ("Glue crawlers and Athena") is what this package does.
"""

from localaws.services.athena.exceptions import AthenaQueryError, QueryCancelled
from localaws.services.athena.models import DUCKDB_THREADS, MAX_CONCURRENT_QUERIES, LocalExecution
from localaws.services.athena.responses import install, recover_after_restart

__all__ = [
    "DUCKDB_THREADS",
    "MAX_CONCURRENT_QUERIES",
    "AthenaQueryError",
    "LocalExecution",
    "QueryCancelled",
    "install",
    "recover_after_restart",
]
