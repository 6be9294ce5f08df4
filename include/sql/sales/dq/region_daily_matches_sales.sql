-- DQ (sales): sales_region_daily agrees with the day's gold sales, region by region: orders, lines
-- and quantity exactly, revenue, cost and profit to 1e-9 relative (sums of doubles in another
-- order), profit_margin = profit / revenue; one row per region (its unique key dt + region) and no
-- nulls (its gold not_null columns). So its lines add up to the gold sales rows, which the shared
-- dq/gold_matches_silver equals to silver. Returns the regions that differ (either side missing,
-- a region twice or a null value included); no rows = pass. A day without lines passes.
-- Params: gold_database, fact_table, gold_tables, partition.
WITH lines AS (
  SELECT customer_region AS region, count(DISTINCT o_orderkey) AS orders, count(*) AS lines,
         sum(l_quantity) AS quantity, sum(revenue) AS revenue, sum(cost) AS cost, sum(profit) AS profit
  FROM {{ params.gold_database }}.{{ params.fact_table }}
  WHERE {{ params.partition }} = '{{ ds }}'
  GROUP BY customer_region
), daily AS (
  SELECT region, orders, lines, quantity, revenue, cost, profit, profit_margin
  FROM {{ params.gold_database }}.{{ params.gold_tables.sales_region_daily }}
  WHERE {{ params.partition }} = '{{ ds }}'
), copies AS (
  -- A GROUP BY, not count(*) OVER (PARTITION BY region): DuckDB 2.0 (localaws's Athena engine)
  -- counts a window over a hive-partitioned scan before the partition filter.
  SELECT region, count(*) AS copies FROM daily GROUP BY region
)
SELECT coalesce(l.region, d.region) AS region, l.lines AS sales_lines, d.lines AS daily_lines,
       l.revenue AS sales_revenue, d.revenue AS daily_revenue, l.profit AS sales_profit, d.profit AS daily_profit
FROM lines l FULL OUTER JOIN daily d ON l.region = d.region
LEFT JOIN copies c ON c.region = d.region
WHERE l.region IS NULL OR d.region IS NULL OR c.copies > 1
   OR d.orders IS NULL OR d.lines IS NULL OR d.quantity IS NULL
   OR d.revenue IS NULL OR d.cost IS NULL OR d.profit IS NULL
   OR l.orders <> d.orders OR l.lines <> d.lines OR l.quantity <> d.quantity
   OR abs(l.revenue - d.revenue) > 1e-9 * greatest(abs(l.revenue), 1)
   OR abs(l.cost - d.cost) > 1e-9 * greatest(abs(l.cost), 1)
   OR abs(l.profit - d.profit) > 1e-9 * greatest(abs(l.profit), 1)
   OR abs(d.profit_margin - d.profit / d.revenue) > 1e-12
