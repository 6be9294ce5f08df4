-- DQ (sales): columns that must never be null in the day's gold tables (the contract's
-- gold.tables.*.not_null; for sales the dimension names and revenue/cost/profit, so a line whose
-- customer, nation, region, supplier or part-supplier is unknown is reported here).
-- Returns (table_name, column_name, violations) per column with nulls; no rows = pass.
-- Params: gold_database, gold_tables, partition.
{%- set ns = namespace(first=true) %}
{%- for name, table in params.gold_tables.items() %}
{%- for col in table.not_null %}
{%- if not ns.first %}
UNION ALL
{%- endif %}
{%- set ns.first = false %}
SELECT '{{ name }}' AS table_name, '{{ col }}' AS column_name, count(*) AS violations
FROM {{ params.gold_database }}.{{ table.table }}
WHERE {{ params.partition }} = '{{ ds }}' AND {{ col }} IS NULL
HAVING count(*) > 0
{%- endfor %}
{%- endfor %}
