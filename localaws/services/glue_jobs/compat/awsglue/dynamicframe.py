"""``awsglue.dynamicframe``: DynamicFrame as a thin wrapper over a Spark DataFrame.

Local Spark has no choice types: each column has one type, so ``resolveChoice`` casts columns
(``cast:``/``project:`` specs) and refuses the specs that only make sense with choice types.
"""

from __future__ import annotations

from typing import Any, Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

#: Glue type names accepted in mappings and casts, mapped to Spark SQL type names.
_GLUE_TO_SPARK = {
    "string": "string",
    "long": "bigint",
    "bigint": "bigint",
    "int": "int",
    "integer": "int",
    "short": "smallint",
    "smallint": "smallint",
    "byte": "tinyint",
    "tinyint": "tinyint",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "binary": "binary",
}


def spark_type(glue_type: str) -> str:
    """Spark SQL type name for a Glue type name (``long`` -> ``bigint``, ``decimal(10,2)`` kept)."""
    t = glue_type.strip().lower()
    if t.startswith("decimal"):
        return t
    if t not in _GLUE_TO_SPARK:
        raise NotImplementedError(f"Glue type {glue_type!r} is not supported by localaws casts")
    return _GLUE_TO_SPARK[t]


def _col(path: str):
    if "." in path and not path.startswith("`"):
        raise NotImplementedError(f"nested field path {path!r} is not supported by localaws DynamicFrame transforms")
    return F.col(f"`{path.strip('`')}`")


class DynamicFrame:
    """A Glue DynamicFrame backed by a Spark DataFrame (``toDF()`` returns it unchanged)."""

    def __init__(self, df: DataFrame, glue_ctx: Any = None, name: str = "") -> None:
        self._df = df
        self.glue_ctx = glue_ctx
        self.name = name

    @classmethod
    def fromDF(cls, dataframe: DataFrame, glue_ctx: Any, name: str) -> "DynamicFrame":
        return cls(dataframe, glue_ctx, name)

    def toDF(self, options: Any = None) -> DataFrame:
        return self._df

    def count(self) -> int:
        """Number of records (rows)."""
        return self._df.count()

    def schema(self):
        return self._df.schema

    def printSchema(self) -> None:
        self._df.printSchema()

    def show(self, num_rows: int = 20) -> None:
        self._df.show(num_rows)

    def _wrap(self, df: DataFrame) -> "DynamicFrame":
        return DynamicFrame(df, self.glue_ctx, self.name)

    def apply_mapping(self, mappings: list[tuple], case_sensitive: bool = False, transformation_ctx: str = "",
                      **kwargs: Any) -> "DynamicFrame":
        """Select, rename and cast: each mapping is ``(source, source_type, target, target_type)``.

        Columns not named in ``mappings`` are dropped, as in Glue.
        """
        cols = []
        for mapping in mappings:
            if len(mapping) != 4:
                raise ValueError(f"mapping {mapping!r} must be (source, source_type, target, target_type)")
            src, _src_type, tgt, tgt_type = mapping
            if "." in tgt:
                raise NotImplementedError(f"apply_mapping to a nested target {tgt!r} is not supported by localaws")
            cols.append(_col(src).cast(spark_type(tgt_type)).alias(tgt))
        return self._wrap(self._df.select(*cols))

    def drop_fields(self, paths: list[str], transformation_ctx: str = "", **kwargs: Any) -> "DynamicFrame":
        for p in paths:
            _col(p)
        return self._wrap(self._df.drop(*[p.strip("`") for p in paths]))

    def select_fields(self, paths: list[str], transformation_ctx: str = "", **kwargs: Any) -> "DynamicFrame":
        return self._wrap(self._df.select(*[_col(p) for p in paths]))

    def rename_field(self, oldName: str, newName: str, transformation_ctx: str = "", **kwargs: Any) -> "DynamicFrame":
        _col(oldName)
        return self._wrap(self._df.withColumnRenamed(oldName.strip("`"), newName))

    def filter(self, f: Callable[[dict], bool], transformation_ctx: str = "", **kwargs: Any) -> "DynamicFrame":
        """Keep the records for which ``f(record)`` is true; a record is a dict of field -> value."""
        schema = self._df.schema
        rdd = self._df.rdd.filter(lambda row: bool(f(row.asDict(recursive=True))))
        return self._wrap(self._df.sparkSession.createDataFrame(rdd, schema))

    def resolveChoice(self, specs: list[tuple[str, str]] | None = None, choice: str = "", database: str | None = None,
                      table_name: str | None = None, transformation_ctx: str = "", **kwargs: Any) -> "DynamicFrame":
        """Apply ``(path, "cast:type")`` or ``(path, "project:type")`` specs as casts.

        :raises NotImplementedError: for ``choice=`` and for ``make_cols``/``make_struct``/``match_catalog``.
        """
        if choice:
            raise NotImplementedError(
                f"DynamicFrame.resolveChoice(choice={choice!r}) is not supported by localaws: local Spark has no choice types"
            )
        df = self._df
        for path, action in specs or []:
            kind, _, arg = action.partition(":")
            if kind not in ("cast", "project"):
                raise NotImplementedError(f"DynamicFrame.resolveChoice spec {action!r} is not supported by localaws")
            name = path.strip("`")
            df = df.withColumn(name, _col(path).cast(spark_type(arg)))
        return self._wrap(df)

    def repartition(self, num_partitions: int, **kwargs: Any) -> "DynamicFrame":
        return self._wrap(self._df.repartition(num_partitions))

    def coalesce(self, num_partitions: int, **kwargs: Any) -> "DynamicFrame":
        return self._wrap(self._df.coalesce(num_partitions))

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(f"DynamicFrame.{name} is not supported by localaws (see docs/localaws.md)")
