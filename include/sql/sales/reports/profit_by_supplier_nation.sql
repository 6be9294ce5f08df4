-- Report (sales): the day's profit by the suppliers' nation (TPC-H query 9 groups its profit by
-- supplier nation and year; here for one day), the params.top_n most profitable nations.
-- Params: gold_database, fact_table, partition, top_n.
SELECT supplier_nation, count(*) AS lines, count(DISTINCT o_orderkey) AS orders,
       round(sum(revenue), 2) AS revenue, round(sum(profit), 2) AS profit
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
GROUP BY supplier_nation
ORDER BY sum(profit) DESC, supplier_nation
LIMIT {{ params.top_n }}
