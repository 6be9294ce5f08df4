"""S3 conditional writes through boto3: of concurrent ``If-None-Match: *`` PUTs exactly one wins,
and ``If-Match`` replaces an object only while its ETag is unchanged (as S3 guarantees)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError


def test_concurrent_create_only_puts_have_one_winner(aws_client):
    s3 = aws_client("s3")
    bucket = f"cond-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    start = threading.Barrier(16)

    def put(i: int) -> str:
        client = aws_client("s3")
        start.wait()
        try:
            client.put_object(Bucket=bucket, Key="lease", Body=f"writer {i}".encode(), IfNoneMatch="*")
            return f"won {i}"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    for _ in range(5):
        s3.delete_object(Bucket=bucket, Key="lease")
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(16)))
        winners = [r for r in results if r.startswith("won")]
        assert len(winners) == 1, results
        assert set(results) - set(winners) == {"PreconditionFailed"}
        assert s3.get_object(Bucket=bucket, Key="lease")["Body"].read() == f"writer {winners[0].split()[1]}".encode()


def test_if_match_replaces_only_the_expected_version(aws_client):
    s3 = aws_client("s3")
    bucket = f"cond-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key="lease", Body=b"old")["ETag"]
    s3.put_object(Bucket=bucket, Key="lease", Body=b"first", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="lease", Body=b"second", IfMatch=etag)
    assert exc.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="lease")["Body"].read() == b"first"
