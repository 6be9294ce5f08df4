-- DQ: the day's gold fact table has exactly the rows the extractor wrote to silver, and (unless the
-- contract's source allows an empty day, as sales' does) at least one.
-- Returns one row (the two counts) when they differ; no rows = pass.
-- Params: silver_database, silver_table, gold_database, fact_table, partition, allow_empty.
WITH silver AS (
  SELECT count(*) AS silver_rows FROM {{ params.silver_database }}.{{ params.silver_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
), gold AS (
  SELECT count(*) AS gold_rows FROM {{ params.gold_database }}.{{ params.fact_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
)
SELECT '{{ ds }}' AS dt, silver.silver_rows, gold.gold_rows
FROM silver CROSS JOIN gold
WHERE silver.silver_rows <> gold.gold_rows{% if not params.allow_empty %} OR gold.gold_rows = 0{% endif %}
