-- DQ (sales): no key appears twice in the day's gold tables (the contract's gold.tables.*.unique_key:
-- o_orderkey + l_linenumber for sales, dt + region for sales_region_daily).
-- Returns (table_name, duplicated_keys, extra_rows) per table with duplicates; no rows = pass.
-- Params: gold_database, gold_tables, partition.
{%- for name, table in params.gold_tables.items() %}
SELECT '{{ name }}' AS table_name, count(*) AS duplicated_keys, sum(copies - 1) AS extra_rows
FROM (
  SELECT {{ table.unique_key | join(', ') }}, count(*) AS copies
  FROM {{ params.gold_database }}.{{ table.table }}
  WHERE {{ params.partition }} = '{{ ds }}'
  GROUP BY {{ table.unique_key | join(', ') }}
  HAVING count(*) > 1
) dupes
HAVING count(*) > 0
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
