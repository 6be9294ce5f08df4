-- Report: the day's worst routes (origin -> dest) by average arrival delay, minutes, over flights
-- that arrived; routes with fewer than params.min_route_flights arrivals are left out.
-- Params: gold_database, gold_tables.flights, partition, min_route_flights, top_n.
SELECT origin, dest, max(dest_name) AS dest_name,
       count(*) AS flights,
       count(arr_delay) AS arrived,
       avg(arr_delay) AS avg_arr_delay,
       max(arr_delay) AS max_arr_delay
FROM {{ params.gold_database }}.{{ params.gold_tables.flights }}
WHERE {{ params.partition }} = '{{ ds }}'
GROUP BY origin, dest
HAVING count(arr_delay) >= {{ params.min_route_flights }}
ORDER BY avg_arr_delay DESC, origin, dest
LIMIT {{ params.top_n }}
