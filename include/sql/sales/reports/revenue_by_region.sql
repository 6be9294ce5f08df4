-- Report (sales): the day's orders, lines, revenue, cost and profit by the customers' region (from
-- gold sales_region_daily). revenue = sum of l_extendedprice x (1 - l_discount), cost = sum of
-- ps_supplycost x l_quantity, profit = revenue - cost (TPC-H query 9's amount), in the data's
-- currency; profit_margin = profit / revenue. Params: gold_database, gold_tables, partition.
SELECT region, orders, lines, quantity,
       round(revenue, 2) AS revenue, round(cost, 2) AS cost, round(profit, 2) AS profit,
       round(profit_margin, 4) AS profit_margin
FROM {{ params.gold_database }}.{{ params.gold_tables.sales_region_daily }}
WHERE {{ params.partition }} = '{{ ds }}'
ORDER BY revenue DESC, region
