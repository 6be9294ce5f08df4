-- DQ: every event of the hour's gold partition happened in that hour (event_time, UTC, within
-- [start, start + 1 h)). Returns (event_id, event_time) of each event outside it; no rows = pass.
-- Params: gold_database, events_table.
SELECT event_id, CAST(event_time AS varchar) AS event_time
FROM {{ params.gold_database }}.{{ params.events_table }}
WHERE dt = '{{ data_interval_start.strftime("%Y-%m-%d") }}' AND hour = '{{ data_interval_start.strftime("%H") }}'
  AND date_format(event_time, '%Y-%m-%d %H') <> '{{ data_interval_start.strftime("%Y-%m-%d %H") }}'
