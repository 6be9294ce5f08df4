-- DQ: columns that must never be null in the day's gold flights (the contract's gold not_null list).
-- Returns (column_name, violations) for each column with nulls; no rows = pass.
-- Params: gold_database, flights_table, partition, not_null (list of column names).
{%- for col in params.not_null %}
SELECT '{{ col }}' AS column_name, count(*) AS violations
FROM {{ params.gold_database }}.{{ params.flights_table }}
WHERE {{ params.partition }} = '{{ ds }}' AND {{ col }} IS NULL
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
