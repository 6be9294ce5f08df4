-- DQ: values within plausible bounds (the contract's gold plausible: {column: {min, max}}, minutes
-- for delays, mph for speed). Returns (column_name, violations, lowest, highest) per column with
-- values outside its bounds; no rows = pass.
-- Params: gold_database, fact_table, partition, plausible.
{%- for col, bounds in params.plausible.items() %}
SELECT '{{ col }}' AS column_name, count(*) AS violations,
       min({{ col }}) AS lowest, max({{ col }}) AS highest
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
  AND ({{ col }} < {{ bounds.min }} OR {{ col }} > {{ bounds.max }})
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
