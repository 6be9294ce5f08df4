"""The extractor's output: the day's silver and quarantine Parquet files, written as rows arrive.

Part of the extractor Lambda (``handler.py`` in this folder). Silver holds the good rows typed as
``validate.silver_schema`` (snappy, row groups of the contract's ``silver.row_group_rows``,
written by a thread of their own so that writing overlaps parsing); quarantine holds the
rejected rows as ``validate.quarantine_schema``, in line order within each chunk, and exists
only when there are rejects.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq
from validate import contracts, quarantine_schema, silver_schema

#: Row groups the Parquet writing thread may have queued.
WRITE_AHEAD = 2


class ParquetOut:
    """The silver and quarantine files of one extraction, and how many rows went to each.

    :meth:`open_silver` once the header is accepted, :meth:`take` for every parsed chunk,
    :meth:`finish` at the end of the file, :meth:`close` always (also after an error; it is what
    leaving the ``with`` block does). Memory: at most one row group waiting to be full plus
    :data:`WRITE_AHEAD` queued ones.

    :param silver_file: local path of the silver file (always written once :meth:`open_silver`
        was called; an empty table when no row is good).
    :param quarantine_file: local path of the quarantine file (written only when a row is rejected).
    """

    def __init__(self, contract: contracts.Contract, silver_file: str | Path, quarantine_file: str | Path) -> None:
        self.contract = contract
        self.silver_file, self.quarantine_file = silver_file, quarantine_file
        self.row_group_rows = int(contract.silver.get("row_group_rows", 131072))
        self.qschema = quarantine_schema(contract)
        self.rows_written = 0
        self.rows_rejected = 0
        self.rejected_by_reason: Counter = Counter()
        self._silver: pq.ParquetWriter | None = None
        self._quarantine: pq.ParquetWriter | None = None
        self._writes: list[Future] = []
        self._pending: list[pa.Table] = []  # good rows not yet a full row group
        self._pending_rows = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extractor-write")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open_silver(self) -> None:
        """Create the silver file (called when the file's header is accepted)."""
        self._silver = pq.ParquetWriter(str(self.silver_file), silver_schema(self.contract), compression="snappy")

    def _write_silver(self, table: pa.Table) -> None:
        """Hand a table to the writing thread (in order, at most :data:`WRITE_AHEAD` waiting)."""
        while len(self._writes) >= WRITE_AHEAD:
            self._writes.pop(0).result()
        self._writes.append(self._pool.submit(self._silver.write_table, table, row_group_size=self.row_group_rows))

    def _reject(self, rejected: pa.Table | None, malformed: list[tuple[int, str, str]]) -> None:
        tables = [rejected] if rejected is not None and rejected.num_rows else []
        if malformed:
            tables.append(pa.Table.from_pylist(
                [{"line_number": n, "reason": reason, "raw_line": text} for n, text, reason in malformed],
                schema=self.qschema))
        if not tables:
            return
        table = pa.concat_tables(tables).sort_by("line_number")
        self.rows_rejected += table.num_rows
        self.rejected_by_reason.update(table["reason"].to_pylist())
        if self._quarantine is None:
            self._quarantine = pq.ParquetWriter(str(self.quarantine_file), self.qschema, compression="snappy")
        self._quarantine.write_table(table)

    def take(self, good: pa.Table | None, rejected: pa.Table | None, malformed: list[tuple[int, str, str]]) -> None:
        """Write one chunk's rows: the rejected ones (``rejected``, and ``malformed`` as
        (line, text, reason)) to quarantine, the good ones to silver in full row groups."""
        self._reject(rejected, malformed)
        if good is not None and good.num_rows:
            self.rows_written += good.num_rows
            self._pending.append(good)
            self._pending_rows += good.num_rows
            if self._pending_rows >= self.row_group_rows:
                table = pa.concat_tables(self._pending)
                full = self._pending_rows - self._pending_rows % self.row_group_rows
                self._write_silver(table.slice(0, full))
                self._pending = [table.slice(full)] if full < self._pending_rows else []
                self._pending_rows -= full

    def finish(self) -> None:
        """Write the last row group (an empty table when no row was good) and wait for every write."""
        if self._pending_rows or self.rows_written == 0:
            self._write_silver(pa.concat_tables(self._pending) if self._pending
                               else silver_schema(self.contract).empty_table())
        for future in self._writes:
            future.result()

    def close(self) -> None:
        """Cancel the writes not started, stop the writing thread and close the files."""
        for future in self._writes:
            future.cancel()
        self._pool.shutdown(wait=True)
        if self._silver is not None:
            self._silver.close()
        if self._quarantine is not None:
            self._quarantine.close()
