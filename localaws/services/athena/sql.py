"""SQL helpers for localaws' Athena: types, Trino -> DuckDB, errors in Athena's words, formatting,
and statement classification (the regexes of the statements sqlglot does not parse, ``statement_kind``).

Type names:

* Glue (Hive) types as the catalog stores them: ``bigint``, ``string``, ``decimal(10,2)``,
  ``array<struct<a:int>>``;
* DuckDB types as the engine reports them: ``BIGINT``, ``VARCHAR``, ``STRUCT(a INTEGER)[]``;
* Athena (Trino) result types as ``GetQueryResults`` reports them: ``bigint``, ``varchar``,
  ``decimal``, ``array``, ``row``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from typing import Any

import sqlglot
from sqlglot import exp

from localaws.services.athena.exceptions import CATEGORY_SYSTEM, TYPE_ENGINE_ERROR, AthenaQueryError

# --- types -------------------------------------------------------------------------------------


def glue_to_duckdb(glue_type: str) -> str:
    """``array<struct<a:int>>`` -> ``STRUCT(a INT)[]``; ``string`` -> ``TEXT``.

    :raises AthenaQueryError: (``HIVE_INVALID_METADATA``) for a type sqlglot cannot read.
    """
    simple = glue_type.strip().lower()
    if simple in ("string", "varchar") or simple.startswith(("varchar(", "char(")):
        return "VARCHAR"
    if simple == "int":
        return "INTEGER"
    try:
        return exp.DataType.build(glue_type, dialect="hive").sql("duckdb")
    except Exception as exc:  # noqa: BLE001 - sqlglot raises several error types
        raise AthenaQueryError("HIVE_INVALID_METADATA", f"Unsupported Hive type: {glue_type}") from exc


def duckdb_to_glue(duck_type: str) -> str:
    """DuckDB result type -> Glue column type, e.g. ``HUGEINT`` -> ``bigint``, ``VARCHAR`` -> ``string``."""
    t = duck_type.upper()
    simple = {
        "VARCHAR": "string", "BIGINT": "bigint", "HUGEINT": "bigint", "UBIGINT": "bigint", "INTEGER": "int",
        "UINTEGER": "bigint", "SMALLINT": "smallint", "USMALLINT": "int", "TINYINT": "tinyint",
        "UTINYINT": "smallint", "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean", "DATE": "date",
        "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp", "TIMESTAMP_NS": "timestamp",
        "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp", "BLOB": "binary", "UUID": "string",
    }
    if t in simple:
        return simple[t]
    if t.startswith("DECIMAL"):
        return t.lower().replace(" ", "")
    try:
        return exp.DataType.build(duck_type, dialect="duckdb").sql("hive").lower().replace(": ", ":").replace(", ", ",")
    except Exception:  # noqa: BLE001
        return "string"


def duckdb_to_athena(duck_type: str) -> tuple[str, int, int]:
    """DuckDB result type -> (Athena type name, Precision, Scale) for ``ColumnInfo``."""
    t = duck_type.upper()
    m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", t)
    if m:
        return "decimal", int(m.group(1)), int(m.group(2))
    if t.endswith("[]") or t.startswith("LIST"):
        return "array", 0, 0
    if t.startswith("STRUCT"):
        return "row", 0, 0
    if t.startswith("MAP"):
        return "map", 0, 0
    table = {
        "VARCHAR": ("varchar", 2147483647, 0), "BIGINT": ("bigint", 19, 0), "HUGEINT": ("bigint", 19, 0),
        "UBIGINT": ("bigint", 19, 0), "INTEGER": ("integer", 10, 0), "UINTEGER": ("bigint", 19, 0),
        "SMALLINT": ("smallint", 5, 0), "TINYINT": ("tinyint", 3, 0), "DOUBLE": ("double", 17, 0),
        "FLOAT": ("real", 17, 0), "BOOLEAN": ("boolean", 0, 0), "DATE": ("date", 0, 0),
        "TIMESTAMP": ("timestamp", 3, 0), "TIMESTAMP_NS": ("timestamp", 3, 0), "TIMESTAMP_MS": ("timestamp", 3, 0),
        "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3, 0), "TIME": ("time", 3, 0),
        "INTERVAL": ("interval day to second", 0, 0), "BLOB": ("varbinary", 2147483647, 0),
        "UUID": ("uuid", 0, 0), "JSON": ("json", 0, 0), '"NULL"': ("unknown", 0, 0), "NULL": ("unknown", 0, 0),
    }
    return table.get(t, ("varchar", 2147483647, 0))


def java_double(value: float, *, single: bool = False) -> str:
    """A float as Java's ``Double.toString`` prints it (Athena's text form): ``2.5``, ``12.0``,
    ``1.0E7``, ``1.0E-4``. ``single`` formats a ``real`` (float32) value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if single:
        import numpy as np

        text = str(np.float32(value))
    else:
        text = repr(value)
    if 1e-3 <= abs(value) < 1e7:
        d = decimal.Decimal(text)
        s = format(d, "f")
        return s if "." in s else s + ".0"
    sign, digits, exponent = decimal.Decimal(text).normalize().as_tuple()
    mant = "".join(map(str, digits))
    e10 = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{mant[0]}.{mant[1:] or '0'}E{e10}"


def format_value(value: Any, athena_type: str) -> str | None:
    """One value as Athena's text form (CSV cell and ``VarCharValue``); None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value, single=athena_type == "real")
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        if value.tzinfo is not None:
            text += " " + (str(value.tzinfo) if str(value.tzinfo) != "UTC" else "UTC")
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return " ".join(f"{b:02x}" for b in bytes(value))
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (decimal.Decimal, int, str, uuid.UUID)):
        return str(value)
    return str(value)


def _nested(value: Any) -> str:
    text = format_value(value, "")
    return "null" if text is None else text


def csv_cell(text: str | None) -> str:
    """A CSV cell as Athena writes it: every value quoted (quotes doubled), NULL as nothing."""
    if text is None:
        return ""
    return '"' + text.replace('"', '""') + '"'


# --- statements --------------------------------------------------------------------------------

_IDENT = r'(?:`[^`]+`|"[^"]+"|[\w$-]+)'
QNAME = rf"({_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}})"
RE_CREATE_DB = re.compile(rf"^\s*CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?({_IDENT})(.*)$",
                          re.I | re.S)
RE_DROP_DB = re.compile(rf"^\s*DROP\s+(?:DATABASE|SCHEMA)\s+(IF\s+EXISTS\s+)?({_IDENT})\s*(CASCADE|RESTRICT)?\s*$",
                        re.I | re.S)
RE_MSCK = re.compile(rf"^\s*MSCK\s+REPAIR\s+TABLE\s+{QNAME}\s*$", re.I | re.S)
RE_SHOW_TABLES = re.compile(rf"^\s*SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+({_IDENT}))?(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$",
                            re.I | re.S)
RE_SHOW_DBS = re.compile(r"^\s*SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", re.I | re.S)
RE_SHOW_PARTITIONS = re.compile(rf"^\s*SHOW\s+PARTITIONS\s+{QNAME}\s*$", re.I | re.S)
RE_SHOW_CREATE = re.compile(rf"^\s*SHOW\s+CREATE\s+TABLE\s+{QNAME}\s*$", re.I | re.S)
RE_SHOW_COLUMNS = re.compile(rf"^\s*SHOW\s+COLUMNS\s+(?:IN|FROM)\s+{QNAME}\s*$", re.I | re.S)
RE_DESCRIBE = re.compile(rf"^\s*(?:DESCRIBE|DESC)\s+(?:FORMATTED\s+|EXTENDED\s+)?{QNAME}\s*$", re.I | re.S)
RE_ALTER_PART = re.compile(rf"^\s*ALTER\s+TABLE\s+{QNAME}\s+(ADD|DROP)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(PARTITION.*)$",
                           re.I | re.S)
RE_PARTITION_SPEC = re.compile(r"PARTITION\s*\(([^)]*)\)(?:\s*LOCATION\s*'([^']*)')?", re.I | re.S)
RE_KV = re.compile(r"\s*(" + _IDENT + r")\s*=\s*('(?:[^']|'')*'|[^,]+?)\s*(?:,|$)")


def unquote_ident(text: str) -> str:
    """```a```, ``"a"`` or ``a`` -> ``a`` (lower-cased, as Athena/Glue store names)."""
    text = text.strip()
    if text[:1] in ("`", '"') and text[-1:] == text[:1]:
        text = text[1:-1]
    return text.lower()


def split_qname(text: str, default_db: str) -> tuple[str, str]:
    """``cat.db.t`` / ``db.t`` / ``t`` -> ``(db, t)``."""
    parts = [unquote_ident(p) for p in re.findall(_IDENT, text)]
    if len(parts) == 1:
        return default_db, parts[0]
    return parts[-2], parts[-1]


def partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    """``PARTITION (dt='2013-01-01', h=1) LOCATION 's3://...' PARTITION (...)`` ->
    ``[({"dt": "2013-01-01", "h": "1"}, "s3://..."), ...]``."""
    out = []
    for spec, location in RE_PARTITION_SPEC.findall(text):
        values = {}
        for key, value in RE_KV.findall(spec):
            value = value.strip()
            if value.startswith("'"):
                value = value[1:-1].replace("''", "'")
            values[unquote_ident(key)] = value
        out.append((values, location or None))
    return out


def strip_comments(sql: str) -> str:
    """Remove ``-- line`` and ``/* block */`` comments outside string literals, and a trailing ``;``."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and (j + 1 >= n or sql[j + 1] != "'"):
                    break
                j += 2 if sql[j] == "'" else 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        else:
            out.append(ch)
            i += 1
    return "".join(out).strip().rstrip(";").strip()


def substitute_parameters(sql: str, params: list[str] | None) -> str:
    """Replace each ``?`` outside string literals with the next ExecutionParameters value
    (Athena inserts them verbatim: strings must carry their own quotes).

    :raises AthenaQueryError: when the counts of ``?`` and parameters differ.
    """
    if not params:
        return sql
    out, it, i, in_str = [], iter(params), 0, False
    used = 0
    for ch in sql:
        if ch == "'":
            in_str = not in_str
        if ch == "?" and not in_str:
            try:
                out.append(str(next(it)))
                used += 1
                continue
            except StopIteration:
                raise AthenaQueryError("INVALID_PARAMETER_USAGE",
                                       f"Incorrect number of parameters: expected {used + 1} but found {len(params)}")
        out.append(ch)
        i += 1
    if used != len(params):
        raise AthenaQueryError("INVALID_PARAMETER_USAGE",
                               f"Incorrect number of parameters: expected {used} but found {len(params)}")
    return "".join(out)


def position_of(sql: str, word: str) -> tuple[int, int]:
    """(line, column), 1-based, of the first whole-word occurrence of ``word`` in ``sql`` (1:1 if absent)."""
    m = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", sql, re.I) or re.search(re.escape(word), sql, re.I)
    if not m:
        return 1, 1
    before = sql[:m.start()]
    return before.count("\n") + 1, m.start() - (before.rfind("\n") + 1) + 1


def parse_error(exc: sqlglot.errors.ParseError) -> AthenaQueryError:
    """A sqlglot parse error as Athena's ``SYNTAX_ERROR: line L:C: ...``."""
    info = (exc.errors or [{}])[0]
    line, col = info.get("line") or 1, info.get("col") or 1
    token = info.get("highlight") or ""
    desc = (info.get("description") or str(exc)).split("\n")[0]
    return AthenaQueryError("SYNTAX_ERROR", f"line {line}:{col}: mismatched input '{token}'. {desc}")


def engine_error(exc: Exception, sql: str) -> AthenaQueryError:
    """A DuckDB error as Athena words the corresponding Trino error."""
    text = str(exc)
    first = text.split("\n")[0]
    m = re.search(r'Referenced column "([^"]+)" not found', text) or re.search(
        r'Column "([^"]+)" referenced that exists in the SELECT clause', text) or re.search(
        r'Values list "[^"]*" does not have a column named "([^"]+)"', text)
    if m:
        line, col = position_of(sql, m.group(1))
        return AthenaQueryError("COLUMN_NOT_FOUND", f"line {line}:{col}: Column '{m.group(1)}' cannot be resolved "
                                                    "or requester is not authorized to access requested resources")
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist", text)
    if m:
        line, col = position_of(sql, m.group(1))
        return AthenaQueryError("FUNCTION_NOT_FOUND", f"line {line}:{col}: Function '{m.group(1)}' not registered")
    m = re.search(r"Table with name (\w+) does not exist", text)
    if m:
        line, col = position_of(sql, m.group(1))
        return AthenaQueryError("TABLE_NOT_FOUND", f"line {line}:{col}: Table '{m.group(1)}' does not exist")
    name = type(exc).__name__
    if name == "ParserException":
        return AthenaQueryError("SYNTAX_ERROR", f"line 1:1: {first.replace('Parser Error: ', '')}")
    if name == "ConversionException":
        return AthenaQueryError("INVALID_CAST_ARGUMENT", first.replace("Conversion Error: ", ""))
    if "Division by zero" in text:
        return AthenaQueryError("DIVISION_BY_ZERO", "Division by zero")
    if name == "BinderException" and ("No function matches" in text or "Cannot compare" in text
                                      or "Could not choose a best candidate" in text):
        return AthenaQueryError("TYPE_MISMATCH", f"line 1:1: {first.replace('Binder Error: ', '')}")
    if name in ("BinderException", "CatalogException"):
        return AthenaQueryError("SYNTAX_ERROR", f"line 1:1: {first.split(': ', 1)[-1]}")
    if name in ("InvalidInputException", "OutOfRangeException"):
        return AthenaQueryError("INVALID_FUNCTION_ARGUMENT", first.split(": ", 1)[-1])
    return AthenaQueryError("GENERIC_INTERNAL_ERROR", first, category=CATEGORY_SYSTEM, error_type=TYPE_ENGINE_ERROR)


def statement_kind(sql: str) -> tuple[str, str]:
    """``(StatementType, SubstatementType)`` of a (comment-free) statement, as GetQueryExecution reports."""
    head = sql.lstrip("( \n\t").split(None, 3)
    word = head[0].upper() if head else ""
    if word in ("SELECT", "WITH", "VALUES", "TABLE"):
        return "DML", "SELECT"
    if word == "INSERT":
        return "DML", "INSERT"
    if word == "CREATE":
        if re.match(r"^\s*CREATE\s+TABLE\b.*\bAS\b\s*\(?\s*(SELECT|WITH|VALUES)\b", sql, re.I | re.S):
            return "DML", "CREATE_TABLE_AS_SELECT"
        if re.match(r"^\s*CREATE\s+(DATABASE|SCHEMA)", sql, re.I):
            return "DDL", "CREATE_DATABASE"
        return "DDL", "CREATE_TABLE"
    if word == "DROP":
        return "DDL", "DROP_DATABASE" if re.match(r"^\s*DROP\s+(DATABASE|SCHEMA)", sql, re.I) else "DROP_TABLE"
    if word == "ALTER":
        return "DDL", "ALTER_TABLE_ADD_PARTITION" if re.search(r"\bADD\b", sql, re.I) else "ALTER_TABLE_DROP_PARTITION"
    if word == "MSCK":
        return "DDL", "MSCK_REPAIR_TABLE"
    if word in ("SHOW", "DESCRIBE", "DESC", "EXPLAIN"):
        return "UTILITY", f"{word.upper()}"
    return "DML", "UNKNOWN"
