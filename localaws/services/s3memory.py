"""Read and write S3 objects in moto's in-memory backend, from inside the server process.

The crawler and the Athena engine run in the server process; reading S3 over HTTP from there
deadlocks (see docs/localaws.md), so they use these helpers. ``account_id`` is the AWS account of the
calling backend (``backend.account_id``); all objects live in moto's ``"aws"`` partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from moto.s3.models import FakeKey, s3_backends


class S3PathError(ValueError):
    """An ``s3://`` URL is malformed, or its bucket does not exist."""


@dataclass(frozen=True)
class S3Object:
    """One object: ``bucket``, ``key``, ``size`` in bytes, ``last_modified`` (UTC)."""

    bucket: str
    key: str
    size: int
    last_modified: datetime

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_url(url: str) -> tuple[str, str]:
    """``"s3://bucket/a/b"`` -> ``("bucket", "a/b")``.

    :raises S3PathError: when ``url`` is not an ``s3://`` (or ``s3a://``/``s3n://``) URL.
    """
    for scheme in ("s3://", "s3a://", "s3n://"):
        if url.startswith(scheme):
            bucket, _, key = url[len(scheme):].partition("/")
            if bucket:
                return bucket, key
    raise S3PathError(f"{url!r} is not an s3:// URL")


def normalize_location(url: str) -> str:
    """A table/crawler location as Athena and Glue read it: empty path segments dropped.

    ``"s3://bucket//table/"`` -> ``"s3://bucket/table/"``; ``"s3://b/a//b"`` -> ``"s3://b/a/b"``.
    The scheme and a trailing ``/`` are kept; anything that is not an ``s3://`` (``s3a://``,
    ``s3n://``) URL is returned unchanged.

    Source: Athena's "Specify a table location in Amazon S3" page
    (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html) says not to use
    empty folders like ``//`` in a LOCATION: although ``s3://bucket/folder//folder/`` is a valid S3
    path, Athena does not allow it and changes it to ``s3://bucket/folder/folder/``, removing the
    extra ``/``. S3 keys may contain ``//``; objects whose keys do are therefore not read through
    such a location (as on Athena). localaws applies the same rule to crawler targets and to Glue job
    paths (Hadoop's ``Path``, which Glue's Spark uses, also collapses ``//``).
    The Glue job's S3 bridge (``glue_jobs/compat/localaws_s3_bridge.py``) runs in the job's
    process and keeps its own copy of this rule; a test checks the two agree.
    """
    for scheme in ("s3://", "s3a://", "s3n://"):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            if rest.startswith("/"):  # no bucket: leave it to split_url to reject
                return url
            segments = [s for s in rest.split("/") if s]
            return scheme + "/".join(segments) + ("/" if rest.endswith("/") else "")
    return url


def _backend(account_id: str):
    return s3_backends[account_id]["aws"]


def _bucket(account_id: str, bucket: str):
    try:
        return _backend(account_id).get_bucket(bucket)
    except Exception as exc:  # moto raises MissingBucket
        raise S3PathError(f"bucket {bucket} does not exist") from exc


def bucket_exists(account_id: str, bucket: str) -> bool:
    """True when ``bucket`` exists in moto's S3 for ``account_id``."""
    try:
        _bucket(account_id, bucket)
        return True
    except S3PathError:
        return False


def list_objects(account_id: str, url: str) -> list[S3Object]:
    """Every current object whose key starts with the key prefix of ``url``, sorted by key.

    Delete markers and zero-byte "folder" objects (keys ending in ``/``) are left out.

    :raises S3PathError: when the URL is malformed or the bucket does not exist.
    """
    bucket_name, prefix = split_url(url)
    bucket = _bucket(account_id, bucket_name)
    out = []
    # _VersionedKeyStore.items() iterates over a copy, so concurrent PUTs are safe.
    for key, obj in bucket.keys.items():
        if not key.startswith(prefix) or key.endswith("/") or not isinstance(obj, FakeKey):
            continue
        out.append(S3Object(bucket_name, key, obj.size, obj.last_modified))
    out.sort(key=lambda o: o.key)
    return out


def read_object(account_id: str, bucket: str, key: str) -> bytes:
    """The bytes of ``s3://bucket/key``.

    :raises S3PathError: when the bucket does not exist.
    :raises KeyError: when the key does not exist.
    """
    obj = _bucket(account_id, bucket).keys.get(key)
    if not isinstance(obj, FakeKey):
        raise KeyError(f"s3://{bucket}/{key} does not exist")
    return obj.value


def put_object(account_id: str, bucket: str, key: str, body: bytes) -> None:
    """Write ``body`` to ``s3://bucket/key`` (creates or replaces).

    :raises S3PathError: when the bucket does not exist.
    """
    _bucket(account_id, bucket)
    _backend(account_id).put_object(bucket_name=bucket, key_name=key, value=body)


def delete_prefix(account_id: str, url: str) -> int:
    """Delete every object under ``url``; returns how many were deleted."""
    objects = list_objects(account_id, url)
    backend = _backend(account_id)
    for obj in objects:
        backend.delete_object(obj.bucket, obj.key)
    return len(objects)
