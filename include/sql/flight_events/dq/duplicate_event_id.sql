-- DQ: gold flight_events holds each event once in the run's hour (dt and hour of the data
-- interval's start, UTC). Returns (event_id, copies) for each event stored more than once; no rows = pass.
-- Params: gold_database, events_table.
SELECT event_id, count(*) AS copies
FROM {{ params.gold_database }}.{{ params.events_table }}
WHERE dt = '{{ data_interval_start.strftime("%Y-%m-%d") }}' AND hour = '{{ data_interval_start.strftime("%H") }}'
GROUP BY event_id
HAVING count(*) > 1
