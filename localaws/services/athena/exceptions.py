"""Athena's query failures: :class:`AthenaQueryError` (a failure in Athena's words) and
:class:`QueryCancelled` (StopQueryExecution), with the error categories and types Athena reports.

Executions keep their :class:`AthenaQueryError` (``LocalExecution.error``), so it is part of
localaws's state snapshots.
"""

from __future__ import annotations

#: Athena's ErrorCategory values (https://docs.aws.amazon.com/athena/latest/ug/error-reference.html).
CATEGORY_SYSTEM, CATEGORY_USER = 1, 2
#: ErrorType 1000 "User error"; 200 "Query engine had an internal error".
TYPE_USER_ERROR, TYPE_ENGINE_ERROR = 1000, 200


class AthenaQueryError(Exception):
    """A query failure in Athena's terms.

    :param error_name: Trino's error name (``TABLE_NOT_FOUND``, ``SYNTAX_ERROR``...) or ``None``
        for Hive DDL failures, whose reasons start with ``FAILED:``.
    :param message: the message after the name, e.g. ``line 1:15: Table '...' does not exist``.
    """

    def __init__(self, error_name: str | None, message: str, *, category: int = CATEGORY_USER,
                 error_type: int = TYPE_USER_ERROR) -> None:
        self.error_name = error_name
        self.message = message
        self.category = category
        self.error_type = error_type
        super().__init__(self.reason)

    def __reduce__(self):
        # A FAILED execution keeps its error in the state snapshot: pickle must rebuild it with
        # its keyword arguments (the default rebuilds from ``args`` alone and fails).
        return (_rebuild_error, (self.error_name, self.message, self.category, self.error_type))

    @property
    def reason(self) -> str:
        """``StateChangeReason`` / ``AthenaError.ErrorMessage``."""
        return f"{self.error_name}: {self.message}" if self.error_name else self.message


def _rebuild_error(error_name: str | None, message: str, category: int, error_type: int) -> AthenaQueryError:
    return AthenaQueryError(error_name, message, category=category, error_type=error_type)


class QueryCancelled(Exception):
    """The query was cancelled by StopQueryExecution."""


#: ``StateChangeReason`` of a query cancelled by its work group's ``BytesScannedCutoffPerQuery``.
#: AWS documents that such a query "is canceled"
#: (https://docs.aws.amazon.com/athena/latest/ug/workgroups-setting-control-limits-cloudwatch.html)
#: but not the reason's wording; this is the text real Athena runs report (state CANCELLED).
BYTES_CUTOFF_REASON = "Bytes scanned limit was exceeded"


class BytesCutoffExceeded(QueryCancelled):
    """The query would scan more than its work group's ``BytesScannedCutoffPerQuery`` bytes."""


def ddl_error(message: str) -> AthenaQueryError:
    """A Hive DDL failure as Athena words it (``FAILED: ...DDLTask. <message>``)."""
    return AthenaQueryError(None, "FAILED: Execution Error, return code 1 from "
                                  f"org.apache.hadoop.hive.ql.exec.DDLTask. {message}")
