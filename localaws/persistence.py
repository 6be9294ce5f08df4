"""Snapshots of localaws's state (moto's backends) in a state directory.

One pickle, ``<state-dir>/state.pickle``, holds the backends of every persisted service, so
objects shared between services (a Lambda function's log backend, say) stay shared. It is
written atomically: to a temporary file in the same directory, fsync'ed, then renamed over the
old one. A snapshot that cannot be read stops startup with :class:`SnapshotError` naming the
file; localaws never silently starts empty over existing state.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
import os
import pickle
import tempfile
import threading
import weakref
import time
from pathlib import Path
from typing import Any, ContextManager

from moto.backends import get_backend

from localaws.runtime import log

#: Services whose state survives a restart.
PERSISTED_SERVICES = ("s3", "glue", "lambda", "sns", "sqs", "logs", "iam", "athena", "sts", "events", "firehose",
                      "cloudwatch", "dynamodb")
SNAPSHOT_NAME = "state.pickle"
FORMAT_VERSION = 1


class SnapshotError(RuntimeError):
    """The snapshot file exists but cannot be loaded; the message names the file and the cause."""


def _make_picklable() -> None:
    """Teach pickle about the few moto objects that hold weak references or locks (idempotent)."""
    from moto.awslambda import models as lambda_models
    from moto.sqs import models as sqs_models

    def weak_getstate(self: Any) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arns"] = dict(state["_arns"].items())
        if "_aliases" in state:  # a defaultdict with a lambda factory
            state["_aliases"] = dict(state["_aliases"])
        return state

    def weak_setstate(self: Any, state: dict[str, Any]) -> None:
        arns = state.pop("_arns")
        self.__dict__.update(state)
        self._arns = weakref.WeakValueDictionary(arns)
        if "_aliases" in state:
            self._aliases = defaultdict(dict, state["_aliases"])

    for cls in (lambda_models.LambdaStorage, lambda_models.LayerStorage):
        cls.__getstate__ = weak_getstate  # type: ignore[attr-defined]
        cls.__setstate__ = weak_setstate  # type: ignore[attr-defined]

    def queue_getstate(self: Any) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_messages_lock", None)
        return state

    def queue_setstate(self: Any, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._messages_lock = threading.Condition()

    # S3 keeps object versions in a dict subclass whose __setitem__ appends a version; pickle's
    # default dict restore would go through it and keep only the newest version.
    from moto.s3.utils import _VersionedKeyStore

    def versioned_reduce(self: Any) -> tuple:
        return (_restore_versioned, (type(self), [(k, list(dict.__getitem__(self, k))) for k in dict.keys(self)],
                                     dict(self.__dict__)))

    _VersionedKeyStore.__reduce__ = versioned_reduce  # type: ignore[method-assign]

    sqs_models.Queue.__getstate__ = queue_getstate  # type: ignore[attr-defined]
    sqs_models.Queue.__setstate__ = queue_setstate  # type: ignore[attr-defined]


def _restore_versioned(cls: type, items: list[tuple[str, list[Any]]], attrs: dict[str, Any]) -> Any:
    store = cls()
    for key, versions in items:
        dict.__setitem__(store, key, versions)
    store.__dict__.update(attrs)
    return store


def _collect() -> dict[str, Any]:
    state: dict[str, Any] = {}
    for service in PERSISTED_SERVICES:
        backends = get_backend(service)  # type: ignore[call-overload]
        state[service] = {acct: dict(regions.items()) for acct, regions in list(backends.items())}
    return state


def save(state_dir: Path, lock: ContextManager[Any] | None = None) -> tuple[Path, int]:
    """Write a snapshot atomically; returns (path, size in bytes).

    :param lock: held while pickling so no request changes the backends half-way.
    """
    _make_picklable()
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / SNAPSHOT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=state_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            with lock or contextlib.nullcontext():
                pickle.dump({"format": FORMAT_VERSION, "saved_at": time.time(), "state": _collect()}, fh,
                            protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target, target.stat().st_size


def _remove_unfinished(state_dir: Path) -> None:
    """Delete the temporary files of snapshots a killed localaws did not finish writing
    (``.state-*.tmp``, made by :func:`save`); the last finished snapshot is never among them."""
    leftovers = sorted(state_dir.glob(".state-*.tmp")) if state_dir.is_dir() else []
    size = 0
    for tmp in leftovers:
        try:
            size += tmp.stat().st_size
            tmp.unlink()
        except FileNotFoundError:
            continue
    if leftovers:
        log.info("removed %d unfinished snapshot file(s) in %s (%d bytes) left by a localaws that was killed "
                 "while writing them", len(leftovers), state_dir, size)


def load(state_dir: Path) -> bool:
    """Restore the snapshot in ``state_dir`` into moto's backends; False when there is none.

    :raises SnapshotError: when the file exists but is unreadable, truncated or of another format.
    """
    _remove_unfinished(state_dir)
    path = state_dir / SNAPSHOT_NAME
    if not path.exists():
        return False
    _make_picklable()
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown snapshot format {data.get('format') if isinstance(data, dict) else type(data)}")
    except Exception as exc:  # noqa: BLE001 - every way of failing is reported the same way
        raise SnapshotError(
            f"cannot read localaws state snapshot {path}: {type(exc).__name__}: {exc}. "
            "Move the file away to start with empty state, or restore it from a backup."
        ) from exc
    for service, accounts in data["state"].items():
        backends = get_backend(service)  # type: ignore[call-overload]
        for account_id, regions in accounts.items():
            account = backends[account_id]
            for region, backend in regions.items():
                dict.__setitem__(account, region, backend)
    log.info("restored state from %s (saved %s)", path, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["saved_at"])))
    return True
