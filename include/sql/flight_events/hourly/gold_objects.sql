-- The Firehose objects the hour's gold events came from (not a check: the DAG's evaluate task
-- compares them with the delivery registry). Returns (source_object, events).
-- Params: gold_database, events_table.
SELECT source_object, count(*) AS events
FROM {{ params.gold_database }}.{{ params.events_table }}
WHERE dt = '{{ data_interval_start.strftime("%Y-%m-%d") }}' AND hour = '{{ data_interval_start.strftime("%H") }}'
GROUP BY source_object
