-- DQ: every key of an enforced dimension reference (the contract's dimensions with enforce=true,
-- e.g. carrier -> airlines.carrier) exists in the dimension table.
-- Returns (column_name, value, row_count) for each unknown key; no rows = pass.
-- Params: gold_database, fact_table, partition, dimension_checks = [{column, database, table, key}].
{%- for check in params.dimension_checks %}
SELECT '{{ check.column }}' AS column_name, CAST(f.{{ check.column }} AS varchar) AS value, count(*) AS row_count
FROM {{ params.gold_database }}.{{ params.fact_table }} f
LEFT JOIN {{ check.database }}.{{ check.table }} d ON f.{{ check.column }} = d.{{ check.key }}
WHERE f.{{ params.partition }} = '{{ ds }}' AND f.{{ check.column }} IS NOT NULL AND d.{{ check.key }} IS NULL
GROUP BY f.{{ check.column }}
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
