-- DQ (sales): code columns hold only the values of the TPC-H generation rules (the contract's gold
-- allowed_values, spec clauses 4.2.3 and 4.2.2.13: o_orderstatus F/O/P, the priorities, return flags, line
-- statuses, ship instructions and modes). Returns (column_name, value, lines) per other value;
-- no rows = pass. Params: gold_database, fact_table, partition, allowed_values = {column: [values]}.
{%- for col, values in params.allowed_values.items() %}
SELECT '{{ col }}' AS column_name, CAST({{ col }} AS varchar) AS value, count(*) AS lines
FROM {{ params.gold_database }}.{{ params.fact_table }}
WHERE {{ params.partition }} = '{{ ds }}'
  AND {{ col }} NOT IN ({% for v in values %}'{{ v | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor %})
GROUP BY {{ col }}
{%- if not loop.last %}
UNION ALL
{%- endif %}
{%- endfor %}
