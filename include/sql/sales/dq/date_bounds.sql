-- DQ (sales): dates within the TPC-H calendar (the contract's gold date_bounds, spec clause 4.2.3:
-- o_orderdate 1992-01-01 .. 1998-08-02, ship, commit and receipt dates 1992-01-01 .. 1998-12-31).
-- Returns (column_name, violations, earliest, latest) per column out of bounds; no rows = pass.
-- Params: gold_database, fact_table, partition, date_bounds = {column: {min, max}} (YYYY-MM-DD).
{%- for col, bounds in params.date_bounds.items() %}
SELECT '{{ col }}' AS column_name, count(*) AS violations, min({{ col }}) AS earliest, max({{ col }}) AS latest
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
  AND ({{ col }} < DATE '{{ bounds.min }}' OR {{ col }} > DATE '{{ bounds.max }}')
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
