-- DQ: departures_hourly's counts of the hour equal the departed and cancelled events in gold
-- flight_events, per origin and carrier. Returns (origin, carrier, the two pairs of counts) where
-- they differ; no rows = pass.
-- Params: gold_database, events_table, departures_table.
WITH e AS (
  SELECT origin, carrier, count_if(event_type = 'departed') AS departures,
         count_if(event_type = 'cancelled') AS cancelled
  FROM {{ params.gold_database }}.{{ params.events_table }}
  WHERE dt = '{{ data_interval_start.strftime("%Y-%m-%d") }}' AND hour = '{{ data_interval_start.strftime("%H") }}'
  GROUP BY origin, carrier
), d AS (
  SELECT origin, carrier, departures, cancelled
  FROM {{ params.gold_database }}.{{ params.departures_table }}
  WHERE dt = '{{ data_interval_start.strftime("%Y-%m-%d") }}' AND hour = '{{ data_interval_start.strftime("%H") }}'
)
SELECT coalesce(e.origin, d.origin) AS origin, coalesce(e.carrier, d.carrier) AS carrier,
       e.departures AS event_departures, d.departures AS table_departures,
       e.cancelled AS event_cancelled, d.cancelled AS table_cancelled
FROM e FULL OUTER JOIN d ON e.origin = d.origin AND e.carrier = d.carrier
WHERE e.departures IS NULL OR d.departures IS NULL OR e.departures <> d.departures OR e.cancelled <> d.cancelled
