-- DQ (sales): money within the bounds the TPC-H generation rules allow (the contract's gold
-- plausible: revenue 0 .. 104,950 = l_extendedprice's bounds, so a negative revenue fails; cost
-- 1 .. 50,000 = ps_supplycost 1.00 .. 1,000.00 x l_quantity 1 .. 50, spec clause 4.2.3).
-- Returns (column_name, violations, lowest, highest) per column out of bounds; no rows = pass.
-- Params: gold_database, fact_table, partition, plausible = {column: {min, max}}.
{%- for col, bounds in params.plausible.items() %}
SELECT '{{ col }}' AS column_name, count(*) AS violations, min({{ col }}) AS lowest, max({{ col }}) AS highest
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
  AND ({{ col }} < {{ bounds.min }} OR {{ col }} > {{ bounds.max }})
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
