"""Benchmark: the extractor Lambda's ``extract_file`` vs DuckDB's own CSV -> Parquet, on TPC-H lineitem.

The file: TPC-H ``lineitem`` made by ``tpchgen-cli csv -T lineitem -s <scale>`` (scale 1 =
6,001,215 rows, 765,864,690 bytes of CSV with a header in the contract's column names), zipped
with the standard library (deflate, level 6) as the bronze file of one day,
``lineitem_<yyyymmdd>.csv`` in a zip, checked by the ``lineitem`` dataset contract
(``include/datasets/lineitem.json``). Both are cached under ``bench/.cache/tpch-sf<scale>/``
(git-ignored; deleted after the run unless ``--keep-cache``, reused when present).

Measured, each in a fresh subprocess of its own (so that its peak RSS is its own), in the same run:

* ``extractor``: ``extract_file(zip, contract, day, silver.parquet, quarantine.parquet)`` from
  ``include/lambdas/extractor/handler.py``: unzip + parse + validate every row against the
  contract + write snappy Parquet. Exactly what the Lambda does between its download (and
  sha256 check) and its upload.
* ``duckdb``: ``COPY (SELECT * FROM read_csv(<the unzipped CSV>, header=true, columns={the
  contract's types})) TO ... (FORMAT parquet, COMPRESSION snappy)``. DuckDB cannot read a zip,
  so it reads the CSV already decompressed: it skips the unzip that the extractor pays. This is
  the baseline of the target.
* ``duckdb+unzip``: the same COPY preceded by unzipping the member to a temporary CSV file with
  ``zipfile`` (the same input as the extractor); for information.

Seconds: wall clock of that work only (``time.perf_counter``; imports, interpreter start-up and
file generation excluded); CPU s: user + system CPU seconds of that work, all threads (less
sensitive than wall clock to other work on the machine; the 1-minute load average is printed
with every run). MB/s and rows/s: bytes and rows of the *uncompressed* CSV per
second (MB = 10**6 bytes). Peak RSS: ``VmHWM`` of the subprocess from ``/proc/self/status``
read at its end, in MB (10**6 bytes, as the target). With ``--repeat N`` each variant runs N times,
alternating, and the median time (and the largest peak RSS) is reported; ``best s`` is the fastest
run, and the ratio of the best runs is printed as well (on a shared machine the median of a
few runs is noisy).

Targets (from the issue): extractor throughput >= 0.5 x DuckDB's (plain CSV); extractor
peak RSS < 512 MB, whatever the file size. Threads: DuckDB uses ``--threads`` (default: every
CPU); the extractor's pyarrow CPU pool gets the same number (plus its own unzip and write
threads).

Run: ``.venv/bin/python bench/extractor.py [--scale 1] [--threads N] [--repeat 1] [--keep-cache]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HANDLER = REPO / "include" / "lambdas" / "extractor" / "handler.py"
CACHE = Path(__file__).resolve().parent / ".cache"
DATASET = "lineitem"
DAY = "2024-01-02"
#: Arrow / contract type -> DuckDB type, for DuckDB's read_csv(columns=...).
DUCKDB_TYPES = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float64": "DOUBLE",
                "string": "VARCHAR", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}
RSS_LIMIT_MB = 512
MIN_RATIO = 0.5


def _contract():
    sys.path.insert(0, str(REPO))
    from lake import contracts

    return contracts.load(DATASET)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM, which /proc gives in KiB), in MB (10**6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the measured work, each run as `bench/extractor.py --child <name> ...` ------------------------


def child_extractor(args: argparse.Namespace) -> dict:
    import importlib.util

    import pyarrow as pa

    if args.threads:
        pa.set_cpu_count(args.threads)
    contract = _contract()
    spec = importlib.util.spec_from_file_location("handler", HANDLER)
    handler = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = handler
    spec.loader.exec_module(handler)
    out = Path(args.out)
    cpu, started = _cpu_seconds(), time.perf_counter()
    result = handler.extract_file(args.zip, contract, DAY, out / "silver.parquet", out / "quarantine.parquet")
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": result.rows_read, "rows_written": result.rows_written,
            "rows_rejected": result.rows_rejected, "bytes_csv": result.bytes_uncompressed,
            "bytes_parquet": result.bytes_silver, "peak_rss_mb": _peak_rss_mb(),
            "threads": pa.cpu_count(), "parquet": str(out / "silver.parquet")}


def _duckdb_copy(con, csv: Path, parquet: Path, contract) -> int:
    columns = ", ".join(f"'{c.name}': '{DUCKDB_TYPES[c.type]}'" for c in contract.columns)
    sql = (f"COPY (SELECT * FROM read_csv('{csv}', header = true, delim = ',', quote = '\"', "
           f"columns = {{{columns}}})) TO '{parquet}' (FORMAT parquet, COMPRESSION snappy)")
    return con.execute(sql).fetchone()[0]


def child_duckdb(args: argparse.Namespace) -> dict:
    import duckdb

    contract = _contract()
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    out = Path(args.out)
    cpu, started = _cpu_seconds(), time.perf_counter()
    if args.unzip:
        with zipfile.ZipFile(args.zip) as zf, zf.open(contract.member_name(DAY)) as member, \
                open(out / "unzipped.csv", "wb") as fh:
            shutil.copyfileobj(member, fh, 1 << 20)
        csv = out / "unzipped.csv"
    else:
        csv = Path(args.csv)
    rows = _duckdb_copy(con, csv, out / "duckdb.parquet", contract)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "bytes_csv": csv.stat().st_size,
            "bytes_parquet": (out / "duckdb.parquet").stat().st_size, "peak_rss_mb": _peak_rss_mb(),
            "threads": threads, "parquet": str(out / "duckdb.parquet")}


# --- the driver --------------------------------------------------------------------------------------


def _tpchgen() -> str:
    for candidate in (Path(sys.executable).parent / "tpchgen-cli", shutil.which("tpchgen-cli")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("tpchgen-cli not found: .venv/bin/pip install -r requirements.txt")


def prepare(scale: float, contract) -> tuple[Path, Path]:
    """The cached lineitem CSV and its bronze zip for ``scale`` (made when missing)."""
    folder = CACHE / f"tpch-sf{scale:g}"
    csv = folder / "lineitem.csv"
    zip_path = folder / f"{contract.name}_{DAY.replace('-', '')}.csv.zip"
    if not csv.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating TPC-H lineitem, scale {scale:g}, with tpchgen-cli ...", flush=True)
        subprocess.run([_tpchgen(), "csv", "-s", f"{scale:g}", "-T", "lineitem", "-o", str(folder), "--quiet",
                        "--overwrite"], check=True)
        zip_path.unlink(missing_ok=True)
    with open(csv, "rb") as fh:
        header = fh.readline().decode().strip().split(",")
    if header != contract.column_names:
        raise SystemExit(f"{csv}: header {header} is not the contract's {contract.column_names}")
    if not zip_path.exists():
        print(f"zipping {csv.stat().st_size:,} bytes of CSV ...", flush=True)
        partial = zip_path.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.write(csv, contract.member_name(DAY))
        partial.rename(zip_path)
    return csv, zip_path


def run_child(name: str, args: argparse.Namespace, csv: Path, zip_path: Path, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--csv", str(csv), "--zip", str(zip_path),
           "--out", str(out)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_same_data(extractor: dict, duck: dict) -> str:
    """Both Parquet files hold the same data (count, sums, date range), read back by DuckDB."""
    import duckdb

    # (sums of the DECIMAL values: a sum of doubles depends on the order of addition.)
    sql = ("SELECT count(*), sum(l_orderkey), sum(l_extendedprice::DECIMAL(15, 2)), sum(l_quantity), min(l_shipdate), "
           "max(l_receiptdate), count(DISTINCT l_comment) FROM read_parquet('{}')")
    con = duckdb.connect()
    a = con.execute(sql.format(extractor["parquet"])).fetchone()
    b = con.execute(sql.format(duck["parquet"])).fetchone()
    if a != b:
        raise SystemExit(f"the two Parquet files differ: extractor {a}, duckdb {b}")
    return f"same data in both Parquet files (rows, sums, date range, distinct comments: {a[0]:,} rows)"


def _load() -> str:
    """The 1-minute load average: other work on the machine slows both sides (DuckDB more)."""
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1, help="TPC-H scale factor (1 = 6,001,215 rows)")
    parser.add_argument("--threads", type=int, default=0, help="threads for DuckDB and pyarrow (default: all CPUs)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; the median time is reported")
    parser.add_argument("--keep-cache", action="store_true", help="keep bench/.cache (CSV and zip) for the next run")
    parser.add_argument("--child", choices=["extractor", "duckdb", "duckdb+unzip"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--zip", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.unzip = args.child == "duckdb+unzip"
        result = child_extractor(args) if args.child == "extractor" else child_duckdb(args)
        print(json.dumps(result))
        return

    contract = _contract()
    csv, zip_path = prepare(args.scale, contract)
    zipped = zip_path.stat().st_size
    variants = ["duckdb", "extractor", "duckdb+unzip"]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        for i in range(args.repeat):
            for name in variants:
                with tempfile.TemporaryDirectory(prefix=f"bench-{name.replace('+', '-')}-", dir=CACHE) as out:
                    run = run_child(name, args, csv, zip_path, Path(out))
                    if i == args.repeat - 1 and name in ("duckdb", "extractor"):  # keep the files for the check
                        kept = CACHE / f"last-{name}.parquet"
                        shutil.move(run["parquet"], kept)
                        run["parquet"] = str(kept)
                runs[name].append(run)
                print(f"  run {i + 1}/{args.repeat} {name:<13} {run['seconds']:7.2f} s  CPU {run['cpu']:6.2f} s  "
                      f"peak RSS {run['peak_rss_mb']:6.0f} MB  (load {_load()})", flush=True)
        check = _check_same_data(runs["extractor"][-1], runs["duckdb"][-1])
    finally:
        for name in ("duckdb", "extractor"):
            (CACHE / f"last-{name}.parquet").unlink(missing_ok=True)
        if not args.keep_cache:
            shutil.rmtree(CACHE / f"tpch-sf{args.scale:g}", ignore_errors=True)
            if not any(CACHE.iterdir()):
                CACHE.rmdir()

    plain = runs["extractor"][0]["bytes_csv"]
    rows = runs["extractor"][0]["rows"]
    ex = runs["extractor"][-1]
    if ex["rows_rejected"] or ex["rows_written"] != rows or any(r["rows"] != rows for v in runs.values() for r in v):
        raise SystemExit(f"row counts differ: {runs}")
    summary = {}
    for name in variants:
        seconds = statistics.median(r["seconds"] for r in runs[name])
        summary[name] = {"seconds": seconds, "best": min(r["seconds"] for r in runs[name]), "cpu": statistics.median(r["cpu"] for r in runs[name]), "mb_s": plain / seconds / 1e6, "rows_s": rows / seconds,
                         "rss": max(r["peak_rss_mb"] for r in runs[name]), "threads": runs[name][0]["threads"]}

    print()
    print(f"TPC-H lineitem, scale {args.scale:g}: {rows:,} rows; CSV {plain:,} bytes uncompressed, {zipped:,} bytes "
          f"zipped; {os.cpu_count()} CPUs; median of {args.repeat} run(s)")
    head = (f"{'':<14}{'input':>16}{'rows':>12}{'seconds':>9}{'MB/s':>8}{'rows/s':>12}{'peak RSS MB':>14}"
            f"{'CPU s':>8}{'best s':>8}{'threads':>9}")
    print(head)
    print("-" * len(head))
    inputs = {"extractor": "zip", "duckdb": "CSV (unzipped)", "duckdb+unzip": "zip -> CSV"}
    for name in ["extractor", "duckdb", "duckdb+unzip"]:
        s = summary[name]
        print(f"{name:<14}{inputs[name]:>16}{rows:>12,}{s['seconds']:>9.2f}{s['mb_s']:>8.1f}{s['rows_s']:>12,.0f}"
              f"{s['rss']:>14.0f}{s['cpu']:>8.2f}{s['best']:>8.2f}{s['threads']:>9}")
    ratio = summary["extractor"]["mb_s"] / summary["duckdb"]["mb_s"]
    ratio_unzip = summary["extractor"]["mb_s"] / summary["duckdb+unzip"]["mb_s"]
    ratio_best = summary["duckdb"]["best"] / summary["extractor"]["best"]
    print()
    print(f"extractor / duckdb throughput: {ratio:.2f} (target >= {MIN_RATIO}: "
          f"{'met' if ratio >= MIN_RATIO else 'NOT met'}); best run vs best run: {ratio_best:.2f}; "
          f"vs duckdb+unzip: {ratio_unzip:.2f}")
    rss = summary["extractor"]["rss"]
    print(f"extractor peak RSS: {rss:.0f} MB (target < {RSS_LIMIT_MB} MB: {'met' if rss < RSS_LIMIT_MB else 'NOT met'})")
    print(check)


if __name__ == "__main__":
    main()
