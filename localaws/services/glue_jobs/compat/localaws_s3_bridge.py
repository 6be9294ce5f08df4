"""S3 for local Spark: stage s3:// reads and writes through a local directory.

PySpark wheels carry no S3 filesystem (no hadoop-aws jar), so inside a localaws Glue run the
DataFrame reader and writer methods are wrapped:

* a read of ``s3://bucket/prefix`` first mirrors the objects under that prefix (or that one key,
  or the keys matching a glob) into ``$LOCALAWS_STAGING_DIR/s3/bucket/prefix`` (objects already
  mirrored with the same ETag are not downloaded again; local files whose object is gone are
  removed), then Spark reads the local copy. ``basePath`` options are mapped the same way, so Hive
  partition discovery works.
* a write to ``s3://bucket/prefix`` is done by Spark into a fresh local directory, then applied to
  S3 with the save mode's meaning: ``errorifexists`` fails if any object exists under the prefix,
  ``ignore`` skips, ``append`` uploads, ``overwrite`` deletes the prefix's objects (with
  ``partitionOverwriteMode=dynamic``: only the objects of the partitions written) and uploads.
  ``_SUCCESS`` and ``.crc`` files are not uploaded.

Only the standard library, boto3 and pyspark are imported: this file runs inside the Glue job's
process, never inside the localaws server. Credentials and endpoint come from the environment
(``AWS_ENDPOINT_URL``) as for any boto3 client.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

S3_SCHEMES = ("s3://", "s3a://", "s3n://")
_counter = itertools.count()
_installed = False


def staging_dir() -> Path:
    """Root of the run's staging area (``$LOCALAWS_STAGING_DIR``)."""
    root = os.environ.get("LOCALAWS_STAGING_DIR")
    if not root:
        raise RuntimeError("LOCALAWS_STAGING_DIR is not set: the S3 bridge runs only inside a localaws Glue run")
    return Path(root)


@functools.lru_cache(maxsize=1)
def s3_client():
    """A boto3 S3 client for localaws (endpoint from ``AWS_ENDPOINT_URL``)."""
    import boto3

    return boto3.client("s3")


def is_s3(path: Any) -> bool:
    return isinstance(path, str) and path.startswith(S3_SCHEMES)


def normalize_location(url: str) -> str:
    """``s3://bucket//a//b/`` -> ``s3://bucket/a/b/``: empty path segments dropped, as Athena and
    Glue read a location (AWS: https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html;
    Hadoop's ``Path`` collapses ``//`` too). A copy of ``localaws.services.s3memory.normalize_location``:
    this file runs in the job's process and cannot import the server's modules; a test checks the
    two agree."""
    for scheme in S3_SCHEMES:
        if url.startswith(scheme):
            rest = url[len(scheme):]
            if rest.startswith("/"):
                return url
            segments = [s for s in rest.split("/") if s]
            return scheme + "/".join(segments) + ("/" if rest.endswith("/") else "")
    return url


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/part`` -> ``("bucket", "key/part")`` (after :func:`normalize_location`)."""
    rest = normalize_location(url).split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def list_keys(bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under ``prefix`` (``Key``, ``Size`` bytes, ``ETag``, ``LastModified``)."""
    out: list[dict[str, Any]] = []
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def mirror_path(url: str) -> str:
    """The local path that mirrors ``url`` (no download)."""
    bucket, key = split_url(url)
    return str(staging_dir() / "s3" / bucket / key)


def _path_not_found(url: str) -> Exception:
    try:
        from pyspark.errors import AnalysisException

        return AnalysisException(f"[PATH_NOT_FOUND] Path does not exist: {url}.")
    except Exception:  # noqa: BLE001 - pyspark not importable: pythonshell job
        return FileNotFoundError(f"Path does not exist: {url}")


def stage_read(url: str) -> str:
    """Mirror ``url`` (an object, a prefix, or a glob) locally; return the local path to read.

    :raises AnalysisException: "Path does not exist" when nothing matches, like Spark on S3.
    """
    bucket, key = split_url(url)
    wildcard = any(ch in key for ch in "*?[")
    prune: str | None = None
    if wildcard:
        base = key[: min(key.index(ch) for ch in "*?[" if ch in key)]
        pattern = key.rstrip("/")
        objects = [
            o for o in list_keys(bucket, base)
            if fnmatch.fnmatchcase(o["Key"], pattern) or fnmatch.fnmatchcase(o["Key"], pattern + "/*")
        ]
    else:
        stripped = key.rstrip("/")
        prune = stripped + "/" if stripped else ""
        objects = list_keys(bucket, prune)
        if not objects and stripped:
            objects = [o for o in list_keys(bucket, stripped) if o["Key"] == stripped]
            prune = None
    objects = [o for o in objects if not o["Key"].endswith("/")]
    if not objects:
        raise _path_not_found(url)
    _sync(bucket, objects, prune)
    return mirror_path(url)


def _sync(bucket: str, objects: list[dict[str, Any]], prune: str | None) -> None:
    """Download new or changed objects; under ``prune`` (a prefix), delete files whose object is gone."""
    import json

    root = staging_dir() / "s3" / bucket
    etags_file = staging_dir() / "etags.json"
    etags = json.loads(etags_file.read_text()) if etags_file.exists() else {}
    wanted = set()
    for obj in objects:
        local = root / obj["Key"]
        wanted.add(str(local))
        tag = f"{bucket}/{obj['Key']}"
        if local.exists() and etags.get(tag) == obj["ETag"]:
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        s3_client().download_file(bucket, obj["Key"], str(local))
        etags[tag] = obj["ETag"]
    if prune is not None and (root / prune).is_dir():
        for path in (root / prune).rglob("*"):
            if path.is_file() and str(path) not in wanted:
                path.unlink()
    etags_file.write_text(json.dumps(etags))


def _local_files(directory: Path) -> Iterable[Path]:
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(directory)
        if path.name == "_SUCCESS" or path.name.endswith(".crc") or any(
            part.startswith(("_temporary", ".")) for part in rel.parts
        ):
            continue
        yield path


def delete_keys(bucket: str, keys: list[str]) -> None:
    """Delete objects in batches of 1000 (the DeleteObjects limit)."""
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        if chunk:
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


def stage_write(url: str, mode: str, dynamic: bool, write_local) -> None:
    """Write through a fresh local directory, then apply the result to ``url`` with ``mode``.

    :param mode: Spark save mode (``errorifexists``/``error``, ``ignore``, ``append``, ``overwrite``).
    :param dynamic: dynamic partition overwrite: replace only the partitions present in the output.
    :param write_local: ``callable(local_path)`` that performs the Spark write locally.
    :raises AnalysisException: "[PATH_ALREADY_EXISTS]" for ``errorifexists`` on a non-empty prefix.
    """
    bucket, key = split_url(url)
    prefix = key.rstrip("/")
    existing = [o["Key"] for o in list_keys(bucket, prefix + "/")] if prefix else [o["Key"] for o in list_keys(bucket, "")]
    mode = (mode or "errorifexists").lower()
    if mode in ("error", "errorifexists", "default") and existing:
        from pyspark.errors import AnalysisException

        raise AnalysisException(
            f'[PATH_ALREADY_EXISTS] Path {url} already exists. Set mode as "overwrite" to overwrite the existing path.'
        )
    if mode == "ignore" and existing:
        return
    local = staging_dir() / "write" / f"{next(_counter)}"
    if local.exists():
        shutil.rmtree(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    write_local(str(local))
    files = list(_local_files(local))
    if mode == "overwrite":
        if dynamic:
            partitions = {str(p.relative_to(local).parent) for p in files if "=" in str(p.relative_to(local).parent)}
            doomed = [k for k in existing if any(k.startswith(f"{prefix}/{part}/") for part in partitions)]
        else:
            doomed = existing
        delete_keys(bucket, doomed)
    for path in files:
        rel = path.relative_to(local).as_posix()
        s3_client().upload_file(str(path), bucket, f"{prefix}/{rel}" if prefix else rel)
    shutil.rmtree(local, ignore_errors=True)


# --- pyspark patches ---------------------------------------------------------------------------


def _map_read_paths(paths: Any) -> Any:
    if isinstance(paths, str):
        return stage_read(paths) if is_s3(paths) else paths
    if isinstance(paths, (list, tuple)):
        return type(paths)(stage_read(p) if is_s3(p) else p for p in paths)
    return paths


def install() -> None:
    """Wrap pyspark's DataFrameReader/DataFrameWriter so s3:// paths work (idempotent)."""
    global _installed
    if _installed:
        return
    from pyspark.sql.readwriter import DataFrameReader, DataFrameWriter

    # Reader: option("basePath", "s3://...") is mapped to the mirror.
    orig_option = DataFrameReader.option

    def option(self, key, value):
        if str(key).lower() == "basepath" and is_s3(value):
            value = mirror_path(value)
        return orig_option(self, key, value)

    def options(self, **opts):
        for k, v in opts.items():
            option(self, k, v)
        return self

    DataFrameReader.option = option
    DataFrameReader.options = options

    def wrap_reader(name: str) -> None:
        orig = getattr(DataFrameReader, name)

        @functools.wraps(orig)
        def reader(self, *args, **kwargs):
            if "basePath" in kwargs and is_s3(kwargs["basePath"]):
                kwargs["basePath"] = mirror_path(kwargs["basePath"])
            if name == "parquet":
                args = tuple(_map_read_paths(a) for a in args)
            elif args:
                args = (_map_read_paths(args[0]), *args[1:])
            for key in ("path", "paths"):
                if key in kwargs:
                    kwargs[key] = _map_read_paths(kwargs[key])
            return orig(self, *args, **kwargs)

        setattr(DataFrameReader, name, reader)

    for name in ("load", "parquet", "csv", "json", "text", "orc"):
        wrap_reader(name)

    # Writer: remember mode and partitionOverwriteMode set through the builder.
    orig_mode = DataFrameWriter.mode
    orig_woption = DataFrameWriter.option

    def wmode(self, saveMode):
        self._localaws_mode = saveMode
        return orig_mode(self, saveMode)

    def woption(self, key, value):
        if str(key).lower() == "partitionoverwritemode":
            self._localaws_pom = str(value)
        return orig_woption(self, key, value)

    def woptions(self, **opts):
        for k, v in opts.items():
            woption(self, k, v)
        return self

    DataFrameWriter.mode = wmode
    DataFrameWriter.option = woption
    DataFrameWriter.options = woptions

    def wrap_writer(name: str) -> None:
        orig = getattr(DataFrameWriter, name)

        @functools.wraps(orig)
        def writer(self, *args, **kwargs):
            path = kwargs.get("path", args[0] if args else None)
            if not is_s3(path):
                return orig(self, *args, **kwargs)
            mode = kwargs.get("mode") or getattr(self, "_localaws_mode", None)
            if mode is None and name == "save" and len(args) >= 3:
                mode = args[2]
            if "partitionOverwriteMode" in kwargs:
                self._localaws_pom = kwargs["partitionOverwriteMode"]
            pom = getattr(self, "_localaws_pom", None) or self._spark.conf.get(
                "spark.sql.sources.partitionOverwriteMode", "static"
            )

            def write_local(local: str) -> None:
                new_args = (local, *args[1:]) if args else args
                new_kwargs = dict(kwargs)
                if "path" in new_kwargs:
                    new_kwargs["path"] = local
                # The local directory is fresh: "overwrite" keeps Spark from refusing it.
                if "mode" in new_kwargs or (name == "save" and len(new_args) >= 3):
                    new_kwargs.pop("mode", None)
                    if name == "save" and len(new_args) >= 3:
                        new_args = (*new_args[:2], "overwrite", *new_args[3:])
                orig_mode(self, "overwrite")
                orig(self, *new_args, **new_kwargs)

            stage_write(path, str(mode or "errorifexists"), str(pom).lower() == "dynamic", write_local)

        setattr(DataFrameWriter, name, writer)

    for name in ("save", "parquet", "csv", "json", "text", "orc"):
        wrap_writer(name)

    def not_supported(method: str):
        def raiser(self, *args, **kwargs):
            raise NotImplementedError(
                f"DataFrameWriter.{method} is not supported by localaws: local Spark has no Glue Data Catalog; "
                "write to an s3:// path and let the crawler catalog it (see docs/localaws.md)"
            )

        return raiser

    DataFrameWriter.saveAsTable = not_supported("saveAsTable")
    DataFrameWriter.insertInto = not_supported("insertInto")
    _installed = True
