-- DQ (sales): the day's gold sales have exactly the order lines the extractor wrote to silver, and
-- sales_region_daily counts every one of them once. Returns one row (the three counts) when they
-- differ; no rows = pass. A day without lines passes when all three are 0 (the contract allows
-- an empty export).
-- Params: silver_database, silver_table, gold_database, fact_table, gold_tables, partition.
WITH silver AS (
  SELECT count(*) AS silver_rows FROM {{ params.silver_database }}.{{ params.silver_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
), gold AS (
  SELECT count(*) AS gold_rows FROM {{ params.gold_database }}.{{ params.fact_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
), daily AS (
  SELECT coalesce(sum(lines), 0) AS daily_lines
  FROM {{ params.gold_database }}.{{ params.gold_tables.sales_region_daily.table }}
  WHERE {{ params.partition }} = '{{ ds }}'
)
SELECT '{{ ds }}' AS dt, silver.silver_rows, gold.gold_rows, daily.daily_lines
FROM silver CROSS JOIN gold CROSS JOIN daily
WHERE silver.silver_rows <> gold.gold_rows OR gold.gold_rows <> daily.daily_lines
