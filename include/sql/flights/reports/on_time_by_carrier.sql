-- Report: on-time performance by carrier for the day (from gold carrier_daily).
-- on_time_rate = flights arriving < 15 minutes late / scheduled flights (cancelled and diverted
-- flights count as not on time). Params: gold_database, gold_tables.carrier_daily, partition.
SELECT carrier, carrier_name, flights, cancelled, diverted, delayed_15, on_time,
       round(on_time_rate, 4) AS on_time_rate,
       round(avg_arr_delay, 1) AS avg_arr_delay, p50_arr_delay, p95_arr_delay
FROM {{ params.gold_database }}.{{ params.gold_tables.carrier_daily }}
WHERE {{ params.partition }} = '{{ ds }}'
ORDER BY on_time_rate DESC, carrier
