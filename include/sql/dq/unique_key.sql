-- DQ: no row appears twice in the day's gold fact table (the contract's gold unique_key; for
-- flights: carrier, flight, origin, scheduled departure). Returns each duplicated key with its copies.
-- Params: gold_database, fact_table, partition, unique_key (list of column names).
SELECT {{ params.unique_key | join(', ') }}, count(*) AS copies
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
GROUP BY {{ params.unique_key | join(', ') }}
HAVING count(*) > 1
