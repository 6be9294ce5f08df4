"""Grouping for the crawler: the objects under one S3 target -> tables and their partitions.

The common AWS layouts:

* files directly under the target path (or under ``k=v/`` folders there) -> one table named
  after the target's last folder;
* each plain first-level folder of the target -> one table named after that folder, unless the
  target holds only folders and all have the same format, columns and layout: then, as AWS
  does, they are partitions of one table named after the target (key ``partition_0`` = folder);
* folders below a table's folder -> partitions: Hive-style ``k=v/`` gives key ``k``, a plain
  folder gives ``partition_<i>`` (type ``string``, as AWS), one partition per distinct folder;
* objects whose file or folder name starts with ``_`` or ``.`` (``_SUCCESS``, ``.crc``) and
  objects matching an ``Exclusions`` glob (relative to the target path) are ignored.

Table names are ``TablePrefix`` + the folder name, lower-cased, other characters than ``a-z0-9_``
replaced by ``_``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote

from localaws.runtime import log
from localaws.services import s3memory
from localaws.services.glue_crawler.inference import FileSchema, merge_schemas


def glob_to_regex(pattern: str) -> re.Pattern:
    """Glue exclusion glob -> regex: ``*`` within a folder, ``**`` across folders, ``?``,
    ``[abc]``, ``{a,b}``."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:j]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        elif ch == "{":
            j = pattern.find("}", i)
            if j < 0:
                out.append(re.escape(ch))
            else:
                out.append("(" + "|".join(re.escape(p) for p in pattern[i + 1:j].split(",")) + ")")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def table_name(raw: str, prefix: str | None) -> str:
    """Glue's table name for folder ``raw``: lower-cased, non ``[a-z0-9_]`` -> ``_``, prefixed."""
    return (prefix or "") + re.sub(r"[^a-z0-9_]", "_", raw.lower())


@dataclass
class TablePlan:
    """A table the crawl found: ``location`` (s3 URL ending in ``/``), ``partition_keys``,
    ``partitions`` (values tuple -> location), the objects and the merged schema."""

    name: str
    location: str
    partition_keys: list[str]
    partitions: dict[tuple[str, ...], str]
    objects: list[s3memory.S3Object]
    schema: FileSchema | None = None


def _is_hidden(segment: str) -> bool:
    return segment.startswith(("_", "."))


def _key_names(dirs: list[str]) -> tuple[str, ...]:
    return tuple(d.split("=", 1)[0].lower() if "=" in d else f"partition_{i}" for i, d in enumerate(dirs))


def _key_value(segment: str) -> str:
    return unquote(segment.split("=", 1)[1]) if "=" in segment else unquote(segment)


def plan_target(account_id: str, path: str, exclusions: list[str], prefix: str | None) -> list[TablePlan]:
    """Group the objects under one S3 target into tables, before schemas are known.

    Files directly under the target, or under ``k=v`` folders there, form the target's table;
    every plain first-level folder forms a table of its own (see :func:`merge_similar` for
    AWS's rule that folds them into one). Folders below a table's folder are partitions:
    ``k=v`` -> key ``k``, plain -> ``partition_<i>``. Objects that do not follow a table's most
    common folder layout are logged and ignored.

    :raises s3memory.S3PathError: when the bucket does not exist.
    """
    bucket, key_prefix = s3memory.split_url(path)
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    base_name = key_prefix.rstrip("/").rsplit("/", 1)[-1] if key_prefix else bucket
    excluded = [glob_to_regex(p) for p in exclusions or []]
    groups: dict[str | None, list[tuple[list[str], s3memory.S3Object]]] = {}
    for obj in s3memory.list_objects(account_id, f"s3://{bucket}/{key_prefix}"):
        rel = obj.key[len(key_prefix):]
        parts = rel.split("/")
        if any(_is_hidden(p) for p in parts) or any(rx.match(rel) for rx in excluded) or obj.size == 0:
            continue
        dirs = parts[:-1]
        if not dirs or "=" in dirs[0]:
            groups.setdefault(None, []).append((dirs, obj))
        else:
            groups.setdefault(dirs[0], []).append((dirs[1:], obj))
    plans = []
    for first, items in groups.items():
        keys = Counter(_key_names(d) for d, _ in items).most_common(1)[0][0]
        location = f"s3://{bucket}/{key_prefix}" + (f"{first}/" if first else "")
        plan = TablePlan(table_name(first or base_name, prefix), location, list(keys), {}, [])
        for dirs, obj in items:
            if _key_names(dirs) != keys:
                log.warning("crawler: %s does not follow the folder layout %s of %s; ignored", obj.url, keys, location)
                continue
            if keys:
                plan.partitions[tuple(_key_value(d) for d in dirs)] = location + "".join(d + "/" for d in dirs)
            plan.objects.append(obj)
        plans.append(plan)
    return plans


def merge_similar(plans: list[TablePlan], target_location: str, name: str) -> list[TablePlan]:
    """AWS's rule: when a target holds only folders and all of them have the same format, columns
    and layout, they are partitions (``partition_0`` = folder name) of one table named ``name``."""
    if not plans or any(p.location == target_location for p in plans):
        return plans
    sigs = {(p.schema.classification, tuple(p.schema.columns), tuple(p.partition_keys)) if p.schema else None
            for p in plans}
    if len(sigs) != 1 or None in sigs:
        return plans
    keys = ["partition_0"] + [f"partition_{int(k[10:]) + 1}" if re.fullmatch(r"partition_\d+", k) else k
                              for k in plans[0].partition_keys]
    merged = TablePlan(name, target_location, keys, {}, [])
    for plan in plans:
        folder = plan.location[len(target_location):].rstrip("/")
        if plan.partition_keys:
            for values, loc in plan.partitions.items():
                merged.partitions[(folder, *values)] = loc
        else:
            merged.partitions[(folder,)] = plan.location
        merged.objects += plan.objects
    merged.schema = merge_schemas([p.schema for p in plans])  # type: ignore[misc]
    return [merged]
