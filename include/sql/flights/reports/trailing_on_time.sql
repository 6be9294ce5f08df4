-- Report: 30-day trailing on-time rate per carrier: the days ds-29 .. ds (those present in gold).
-- Rate = sum(on_time) / sum(flights), so busy days weigh more than quiet ones.
-- Params: gold_database, gold_tables.carrier_daily, partition, trailing_days (30).
SELECT carrier, max(carrier_name) AS carrier_name,
       count(DISTINCT {{ params.partition }}) AS days,
       sum(flights) AS flights,
       sum(on_time) AS on_time,
       CAST(sum(on_time) AS double) / sum(flights) AS on_time_rate
FROM {{ params.gold_database }}.{{ params.gold_tables.carrier_daily }}
-- dt is a string partition (compared as text so Athena prunes partitions); the inner CAST to date
-- keeps the bound a plain date where an engine's date_add returns a timestamp (DuckDB).
WHERE {{ params.partition }}
      BETWEEN CAST(CAST(date_add('day', -({{ params.trailing_days }} - 1), DATE '{{ ds }}') AS date) AS varchar)
      AND '{{ ds }}'
GROUP BY carrier
ORDER BY on_time_rate DESC, carrier
