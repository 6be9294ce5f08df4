-- DQ (sales): every line of the day's partition belongs to an order of that day (o_orderdate = dt):
-- the export of day D holds the orders placed on D. The extractor cannot check this (the contract's
-- source.day_columns takes year/month/day columns), so this check does.
-- Returns (o_orderdate, lines) per other date; no rows = pass.
-- Params: gold_database, fact_table, partition.
SELECT o_orderdate, count(*) AS lines
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}' AND o_orderdate <> DATE '{{ ds }}'
GROUP BY o_orderdate
