-- DQ: no flight appears twice in the day's gold flights (the contract's gold unique_key:
-- carrier, flight, origin, scheduled departure). Returns each duplicated key with its copies.
-- Params: gold_database, flights_table, partition, unique_key (list of column names).
SELECT {{ params.unique_key | join(', ') }}, count(*) AS copies
FROM {{ params.gold_database }}.{{ params.flights_table }}
WHERE {{ params.partition }} = '{{ ds }}'
GROUP BY {{ params.unique_key | join(', ') }}
HAVING count(*) > 1
