-- A dimension's reference table (unpartitioned Parquet written by `lake source load-dimensions`),
-- declared here rather than left to the crawler. Columns and types come from the dataset contract.
-- Params: database, dimension = {name, location, columns: [{name, athena_type, description}]}.
CREATE EXTERNAL TABLE IF NOT EXISTS {{ params.database }}.{{ params.dimension.name }} (
{%- for col in params.dimension.columns %}
  `{{ col.name }}` {{ col.athena_type }} COMMENT '{{ col.description | replace("'", "") }}'{{ "," if not loop.last }}
{%- endfor %}
)
STORED AS PARQUET
LOCATION '{{ params.dimension.location }}'
TBLPROPERTIES ('parquet.compression' = 'SNAPPY')
