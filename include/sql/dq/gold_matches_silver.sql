-- DQ: the day's gold fact table has exactly the rows the extractor wrote to silver.
-- Returns one row (the two counts) when they differ; no rows = pass.
-- Params: silver_database, silver_table, gold_database, fact_table, partition.
WITH silver AS (
  SELECT count(*) AS silver_rows FROM {{ params.silver_database }}.{{ params.silver_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
), gold AS (
  SELECT count(*) AS gold_rows FROM {{ params.gold_database }}.{{ params.fact_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
)
SELECT '{{ ds }}' AS dt, silver.silver_rows, gold.gold_rows
FROM silver CROSS JOIN gold
WHERE silver.silver_rows <> gold.gold_rows OR gold.gold_rows = 0
