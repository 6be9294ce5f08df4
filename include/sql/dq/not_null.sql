-- DQ: columns that must never be null in the day's gold fact table (the contract's gold not_null list).
-- Returns (column_name, violations) for each column with nulls; no rows = pass.
-- Params: gold_database, fact_table, partition, not_null (list of column names).
{%- for col in params.not_null %}
SELECT '{{ col }}' AS column_name, count(*) AS violations
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}' AND {{ col }} IS NULL
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
