"""Snapshots of localaws's state (moto's backends) in a state directory.

One pickle, ``<state-dir>/state.pickle``, holds the backends of every persisted service, so
objects shared between services (a Lambda function's log backend, say) stay shared. It is
written atomically: to a temporary file in the same directory, fsync'ed, then renamed over the
old one. A snapshot that cannot be read stops startup with :class:`SnapshotError` naming the
file; localaws never silently starts empty over existing state.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any, ContextManager

from moto.backends import get_backend

from localaws.runtime import log

#: Services whose state survives a restart.
PERSISTED_SERVICES = ("s3", "glue", "lambda", "sns", "sqs", "logs", "iam", "athena", "sts", "events", "firehose")
SNAPSHOT_NAME = "state.pickle"
FORMAT_VERSION = 1


class SnapshotError(RuntimeError):
    """The snapshot file exists but cannot be loaded; the message names the file and the cause."""


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


def load(state_dir: Path) -> bool:
    """Restore the snapshot in ``state_dir`` into moto's backends; False when there is none.

    :raises SnapshotError: when the file exists but is unreadable, truncated or of another format.
    """
    path = state_dir / SNAPSHOT_NAME
    if not path.exists():
        return False
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
