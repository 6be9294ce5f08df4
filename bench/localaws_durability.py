"""Benchmark: what durable writes cost (``localaws serve --state-dir``, the default) against
periodic snapshots only (``--no-durable-writes``).

For each state size (bytes already stored in S3 before measuring: the demo's state is ~1-2 MB)
it prints the wall time of 200 sequential 1 KB ``PutObject`` calls from one client, and of 200
puts from 8 threads (writes arriving together share one snapshot: group commit), milliseconds per
write, plus the snapshots written. Each durable write costs a pickle of the whole state plus an
fsync, so the cost grows with the state; reads never wait.

Run: ``.venv/bin/python bench/localaws_durability.py [--sizes-mb 2 50]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from localaws.server import LocalAWS

N = 200


def measure(state_mb: int, durable: bool) -> tuple[float, float, int]:
    """(ms per sequential write, ms per write with 8 writers, snapshots written)."""
    with tempfile.TemporaryDirectory() as state_dir, LocalAWS(port=0, state_dir=state_dir,
                                                               durable_writes=durable) as aws:
        def client():
            return boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="us-east-1",
                                aws_access_key_id="x", aws_secret_access_key="x")

        s3 = client()
        s3.create_bucket(Bucket="bench-state")
        for i in range(state_mb):
            s3.put_object(Bucket="bench-state", Key=f"filler/{i}", Body=os.urandom(1 << 20))
        commits0 = aws.commits
        started = time.perf_counter()
        for i in range(N):
            s3.put_object(Bucket="bench-state", Key=f"seq/{i}", Body=b"x" * 1024)
        sequential = (time.perf_counter() - started) / N * 1000
        clients = [client() for _ in range(8)]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: clients[i % 8].put_object(Bucket="bench-state", Key=f"par/{i}",
                                                              Body=b"x" * 1024), range(N)))
        parallel = (time.perf_counter() - started) / N * 1000
        return sequential, parallel, aws.commits - commits0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[2, 50], help="state sizes, MiB")
    args = parser.parse_args()
    print(f"{'state':>8} {'mode':>9} {'ms/write (1 client)':>20} {'ms/write (8 threads)':>21} {'snapshots':>10}")
    for size in args.sizes_mb:
        for durable in (False, True):
            seq, par, commits = measure(size, durable)
            print(f"{size:>6} MB {'durable' if durable else 'periodic':>9} {seq:>20.1f} {par:>21.1f} {commits:>10}")


if __name__ == "__main__":
    main()
