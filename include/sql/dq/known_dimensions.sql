-- DQ: every key of an enforced dimension reference (the contract's dimensions with enforce=true,
-- e.g. carrier -> airlines.carrier) exists in the dimension table. A composite key (e.g. sales'
-- l_partkey + l_suppkey -> partsupp) is matched as a whole: column_name and value join its parts by ", ".
-- Returns (column_name, value, row_count) for each unknown key; no rows = pass.
-- Params: gold_database, fact_table, partition,
--   dimension_checks = [{column, database, table, key, on (optional): [{column, key}]}].
{%- for check in params.dimension_checks %}
{%- set on = check.on if check.on is defined else [{"column": check.column, "key": check.key}] %}
SELECT '{{ check.column }}' AS column_name, {% for k in on %}CAST(f.{{ k.column }} AS varchar){{ " || ', ' || " if not loop.last }}{% endfor %} AS value, count(*) AS row_count
FROM {{ params.gold_database }}.{{ params.fact_table }} f
LEFT JOIN {{ check.database }}.{{ check.table }} d ON {% for k in on %}f.{{ k.column }} = d.{{ k.key }}{{ " AND " if not loop.last }}{% endfor %}
WHERE f.{{ params.partition }} = '{{ ds }}'{% for k in on %} AND f.{{ k.column }} IS NOT NULL{% endfor %} AND d.{{ on[0].key }} IS NULL
GROUP BY {% for k in on %}f.{{ k.column }}{{ ", " if not loop.last }}{% endfor %}
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
