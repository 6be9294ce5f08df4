"""Benchmark: localaws Firehose ingest with PutRecordBatch, and ``lake stream send`` holding a rate.

1. Ingest: records of the real flight_events of 2013-06-01 (about 260 bytes each) sent with
   PutRecordBatch (500 a call) from ``--threads`` client threads to a plain stream (64 MiB / 900 s
   buffers, no compression) and to the lake's stream (dynamic partitioning by event date and hour
   with jq, GZIP, lake.layout's prefixes), twice: to ``localaws serve`` as its own process (the
   2-core figure: client and server each have a GIL, as a real client on another machine) and to
   an in-process localaws (client and server share one GIL: at most one core). No state dir. Prints
   records/s and MB/s of accepted data and records per CPU second (client, server; target: >=
   10,000 records/s on 2 cores).
2. Pacing: :class:`lake.stream.send.Sender` at ``--rate`` (default 100 records/s, the KDG's default)
   for ``--duration`` seconds (default 60; the issue asks for 300) with the KDG help page's sensor
   template. Prints the achieved rate, records per 1-second window after the first (mean, min, max,
   stdev) and the jitter: how far the gaps between batches are from the 0.2 s tick (p50, p99, max, ms).

Run: ``.venv/bin/python bench/stream.py [--records 40000] [--threads 2] [--duration 60] [--rate 100]``
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psutil
from botocore.config import Config

from lake import contracts, layout, settings
from lake.stream import events, send, templates
from localaws.server import LocalAWS

ROLE = "arn:aws:iam::123456789012:role/firehose"
SENSOR = ('{"sensorId": {{random.number(50)}}, "currentTemperature": {{random.number({"min": 10, "max": 150})}}, '
          '"status": "{{random.arrayElement(["OK", "FAIL", "WARN"])}}", "at": "{{date.utc}}"}')


def _streams(client, lay: layout.Layout) -> dict[str, dict]:
    client("s3").create_bucket(Bucket="bench-stream")
    base = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::bench-stream"}
    configs = {
        "plain": {**base, "Prefix": "plain/", "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900}},
        "lake": {**base, "Prefix": lay.stream_prefix, "ErrorOutputPrefix": lay.stream_error_prefix,
                 "CompressionFormat": "GZIP", "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
                 "DynamicPartitioningConfiguration": {"Enabled": True},
                 "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction",
                                                                              "Parameters": [
                     {"ParameterName": "MetadataExtractionQuery", "ParameterValue": lay.stream_partition_query},
                     {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}},
    }
    for name, config in configs.items():
        client("firehose").create_delivery_stream(DeliveryStreamName=f"bench-{name}",
                                                  ExtendedS3DestinationConfiguration=config)
    return configs


def ingest(client, stream: str, data: list[bytes], total: int, threads: int,
           server: psutil.Process | None = None) -> tuple[float, float, float, float | None]:
    """Send ``total`` records (``data`` cycled) in calls of 500; returns (records/s, MB/s, records per
    CPU second of this process, records per CPU second of ``server`` or None). CPU figures are
    distorted less than wall time by a busy machine; in-process, this process is client + server."""
    batches = [[{"Data": data[(i + j) % len(data)]} for j in range(min(500, total - i))]
               for i in range(0, total, 500)]
    size = sum(len(r["Data"]) for b in batches for r in b)
    clients = [client("firehose") for _ in range(threads)]

    def put(n: int) -> int:
        fh = clients[n % threads]
        answer = fh.put_record_batch(DeliveryStreamName=stream, Records=batches[n])
        return len(batches[n]) - answer["FailedPutCount"]

    def server_cpu() -> float:
        if server is None:
            return 0.0
        times = server.cpu_times()
        return times.user + times.system

    start, cpu, scpu = time.perf_counter(), time.process_time(), server_cpu()
    with ThreadPoolExecutor(threads) as pool:
        accepted = sum(pool.map(put, range(len(batches))))
    elapsed, cpu, scpu = time.perf_counter() - start, time.process_time() - cpu, server_cpu() - scpu
    assert accepted == total, f"{total - accepted} records failed"
    return total / elapsed, size / elapsed / 1e6, total / cpu, (total / scpu if server is not None else None)


def _clients(endpoint: str, threads: int):
    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="x", config=Config(max_pool_connections=max(10, threads)))
    return client


def ingest_runs(client, lay: layout.Layout, data: list[bytes], records: int, threads: int, title: str,
                server: psutil.Process | None = None) -> None:
    """Create the streams and print one line per stream (see :func:`ingest`)."""
    _streams(client, lay)
    print(f"Firehose ingest, PutRecordBatch x500, {records:,} records of {statistics.mean(map(len, data)):.0f} "
          f"bytes, {threads} client threads, {title} (no state dir):")
    for name in ("plain", "lake"):
        ingest(client, f"bench-{name}", data, 2_000, threads, server)  # warm-up
        per_s, mb_s, per_cpu, per_server_cpu = ingest(client, f"bench-{name}", data, records, threads, server)
        cpu = (f"client {per_cpu:,.0f}, server {per_server_cpu:,.0f}" if per_server_cpu is not None
               else f"client + server {per_cpu:,.0f}")
        print(f"  {name:5}: {per_s:10,.0f} records/s  {mb_s:6.2f} MB/s  (records per CPU second: {cpu})")


def separate_server(lay: layout.Layout, data: list[bytes], records: int, threads: int) -> None:
    """:func:`ingest_runs` against ``localaws serve --port 0`` started as a child process."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from localaws.cli import main; sys.exit(main())",
                             "serve", "--port", "0", "--no-durable-writes", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("localaws ready at "):
            raise RuntimeError(f"localaws serve did not start (exit {proc.poll()}): {line!r}")
        ingest_runs(_clients(line.split()[-1], threads), lay, data, records, threads,
                    f"localaws serve in its own process (pid {proc.pid})", psutil.Process(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pacing(client, rate: float, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sensor.tmpl"
        path.write_text(SENSOR)
        records = send.template_records(templates.RecordTemplate(path, seed=1))
        stats = send.Sender(client("firehose"), "bench-plain", records, rate=rate, duration=duration,
                            batch_interval=0.2).run()
    per_second: dict[int, int] = {}
    for at, n in stats.batch_log:
        per_second[int(at)] = per_second.get(int(at), 0) + n
    # Whole seconds after the first (whose first tick sends one record: records 0..0.2 s come at 0.2 s).
    windows = [per_second.get(s, 0) for s in range(1, int(duration))]
    times = [at for at, _ in stats.batch_log]
    gaps = sorted(abs((b - a) - 0.2) * 1000 for a, b in itertools.pairwise(times))
    return {"sent": stats.sent, "elapsed": stats.elapsed, "rate": stats.sent / stats.elapsed,
            "win_mean": statistics.mean(windows), "win_min": min(windows), "win_max": max(windows),
            "win_stdev": statistics.pstdev(windows), "gap_p50": gaps[len(gaps) // 2],
            "gap_p99": gaps[int(len(gaps) * 0.99)], "gap_max": gaps[-1], "failed": stats.failed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=40_000, help="records per ingest run (default 40,000)")
    p.add_argument("--threads", type=int, default=2, help="client threads of the ingest runs (default 2)")
    p.add_argument("--rate", type=float, default=100.0, help="the pacing run's records/s (default 100)")
    p.add_argument("--duration", type=float, default=60.0, help="the pacing run's seconds (default 60)")
    args = p.parse_args()
    lay = layout.Layout(settings.get(), contracts.load("flight_events"))
    data = [r.data for r in send.event_records(events.flight_events("2013-06-01"), events.event_epoch)]
    separate_server(lay, data, args.records, args.threads)
    with LocalAWS(port=0) as aws:
        client = _clients(aws.endpoint_url, args.threads)
        ingest_runs(client, lay, data, args.records, args.threads, "in-process localaws (one GIL)")
        print(f"lake stream send at {args.rate:g} records/s for {args.duration:g} s (KDG sensor template):")
        r = pacing(client, args.rate, args.duration)
        print(f"  sent {r['sent']:,} ({r['failed']} failed) in {r['elapsed']:.1f} s: {r['rate']:.2f} records/s; "
              f"per 1 s window mean {r['win_mean']:.1f}, min {r['win_min']}, max {r['win_max']}, "
              f"stdev {r['win_stdev']:.2f}")
        print(f"  jitter (|gap between batches - 0.2 s|): p50 {r['gap_p50']:.1f} ms, p99 {r['gap_p99']:.1f} ms, "
              f"max {r['gap_max']:.1f} ms")


if __name__ == "__main__":
    main()
