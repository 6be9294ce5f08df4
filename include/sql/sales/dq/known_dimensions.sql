-- DQ (sales): every line's keys of an enforced dimension (the contract's dimensions with
-- enforce=true: customer by o_custkey, part by l_partkey, supplier by l_suppkey, partsupp by
-- l_partkey + l_suppkey, a composite key matched as a whole) exist in the dimension table.
-- Returns (dimension, unknown_keys, lines) per dimension with unknown keys; no rows = pass.
-- Params: gold_database, fact_table, partition, dimension_checks = [{role, database, table, on: [{column, key}]}].
{%- for check in params.dimension_checks %}
SELECT '{{ check.role }}' AS dimension, count(*) AS unknown_keys, sum(lines) AS lines
FROM (
  SELECT {% for k in check.on %}f.{{ k.column }}{{ ", " if not loop.last }}{% endfor %}, count(*) AS lines
  FROM {{ params.gold_database }}.{{ params.fact_table }} f
  LEFT JOIN {{ check.database }}.{{ check.table }} d
    ON {% for k in check.on %}f.{{ k.column }} = d.{{ k.key }}{{ " AND " if not loop.last }}{% endfor %}
  WHERE f.{{ params.partition }} = '{{ ds }}' AND d.{{ check.on[0].key }} IS NULL
  GROUP BY {% for k in check.on %}f.{{ k.column }}{{ ", " if not loop.last }}{% endfor %}
) unknown
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
