"""The localaws server: moto's server on loopback, extended so Lambda and Glue jobs really run.

Use it in-process::

    with LocalAWS(port=0) as aws:
        boto3.client("s3", endpoint_url=aws.endpoint_url, ...)

or from the command line (``localaws serve``). Besides the AWS APIs it answers:

* ``GET /_localaws/health`` -> ``{"status": "ok", "version", "endpoint", "state_dir", "uptime_seconds", "faults",
  "durable_writes", "commits"}`` (``commits``: snapshots written to make writes durable)
* ``GET /_localaws/sns/messages[?topic=NAME]`` -> ``{"messages": [...]}`` (see
  :func:`localaws.services.sns.published_messages`)
* ``GET /_localaws/faults`` -> fault injection config and counters; ``POST`` (a JSON config)
  replaces the config, ``DELETE`` turns fault injection off (see :mod:`localaws.faults`)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

from moto.moto_api import state_manager
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from localaws import __version__, persistence
from localaws import faults as _faults
from localaws.runtime import RUNTIME, NotEmulated, log
from localaws.services import (
    athena,
    awslambda,
    cloudtrail,
    cloudwatch_alarms,
    dynamodb,
    firehose,
    glue_crawler,
    glue_dq,
    glue_jobs,
    s3conditional,
    s3events,
    s3subresources,
    sns,
)

#: Default seconds between periodic snapshots when a state directory is set.
DEFAULT_SNAPSHOT_INTERVAL = 30.0

_active: "LocalAWS | None" = None
_active_lock = threading.Lock()


class _QuietHandler(MotoRequestHandler):
    """Werkzeug's handler without a log line per HTTP request (localaws logs per executed run)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class RWLock:
    """Many readers (requests) or one writer (the snapshot); a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            # A waiting writer goes first: a steady stream of requests must not starve snapshots.
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def install_patches() -> None:
    """Patch moto so compute runs (idempotent) and freeze moto's automatic state progression."""
    awslambda.install()
    glue_jobs.install()
    sns.install()
    glue_crawler.install()
    glue_dq.install()
    athena.install()
    s3conditional.install()
    cloudwatch_alarms.install()
    firehose.install()
    s3events.install()
    dynamodb.install()
    cloudtrail.install()
    for model in ("glue::job_run", "glue::crawl", "athena::execution"):
        state_manager.set_transition(model, {"progression": "manual", "times": 10**12})


#: Operation name prefixes that only read state (the rest of the API changes it).
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Search", "BatchGet", "Check", "Lookup", "Filter", "Receive",
                  "Query", "Select", "Scan", "Validate", "Test")


def _changes_state(environ: dict[str, Any], op: _faults.Operation | None) -> bool:
    """Whether a request may change state: every AWS operation except reads (GET/HEAD, and POSTs of
    JSON/query protocols whose operation is a Get/List/Describe/... call). ``ReceiveMessage`` counts as
    a read: a message whose receipt is lost in a crash becomes visible again, as in SQS."""
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD") or op is None:
        return False
    return not op.name.startswith(_READ_PREFIXES)


#: HTTP status and error code of an operation localaws does not implement. botocore retries
#: neither: its legacy rules (botocore/data/_retry.json) retry 500, 502, 503, 504, 509, 429 and
#: the throttling codes; standard mode (botocore/retries/standard.py) 500, 502, 503, 504, the
#: throttling codes and RequestTimeout(Exception)/PriorRequestNotComplete.
NOT_IMPLEMENTED = (501, "NotImplemented")


def not_implemented_message(op: _faults.Operation, detail: str) -> str:
    """The message of a :data:`NOT_IMPLEMENTED` error: service, operation, what moto said."""
    return (f"localaws does not implement {op.service} {op.name}: the operation is not emulated "
            f"(moto: {detail}). See docs/localaws.md for what localaws runs.")


def _answer_not_implemented(app: Callable) -> Callable:
    """Wrap moto's WSGI app: an operation moto has no handler for (its response dispatch raises
    ``NotImplementedError``, which its debug-mode Flask apps propagate) is answered at once with
    :data:`NOT_IMPLEMENTED` in the service's own protocol, instead of an HTML 500 page that
    botocore retries (4 retries with back-off, about 10 s per call)."""

    def application(environ: dict[str, Any], start_response: Callable) -> Any:
        body = None
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            # Query protocols name the operation in the form body, which moto consumes: keep a copy.
            try:
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            answered[:] = [status, headers, exc_info]
            return lambda data: None  # moto's Flask apps return their body; they never write()

        def not_implemented(detail: str, verbatim: bool = False) -> list[bytes]:
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)
            op = _faults.identify(environ) or _faults.Operation("unknown", "Unknown", "rest-json")
            status, code = NOT_IMPLEMENTED
            message = detail if verbatim else not_implemented_message(op, detail)
            log.warning("%s", message)
            status_line, headers, payload = _faults.protocol_error(op, status, code, message, sender=False,
                                                                   method=environ.get("REQUEST_METHOD", "POST"))
            start_response(status_line, headers)
            return [payload]

        refused = s3subresources.refused(environ)
        if refused is not None:
            return not_implemented("moto's S3 does not read this operation's sub-resource and would answer it "
                                   "as another operation (localaws/services/s3subresources.py)")
        try:
            result = app(environ, capture)
        except NotImplementedError as exc:  # NotEmulated: a part of an operation, its message says which
            return not_implemented(str(exc) or type(exc).__name__, verbatim=isinstance(exc, NotEmulated))
        status, headers, exc_info = answered
        if status.startswith("404") and any(k.lower() == "content-type" and v.startswith("text/html")
                                            for k, v in headers):
            # A REST operation moto has no route for: Flask's HTML 404 page. An AWS 404 is never HTML.
            op = _faults.identify(environ)
            if op is not None and op.name != "Unknown" and op.protocol in ("rest-json", "rest-xml"):
                if hasattr(result, "close"):
                    result.close()
                return not_implemented(f"no route for {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}")
        start_response(status, headers, exc_info)
        return result

    return application


class LocalAWS:
    """An embedded AWS endpoint on ``host:port``.

    :param host: address to bind; loopback by default. Anything else is logged as a warning,
        because localaws has no authentication.
    :param port: TCP port; 0 picks a free one (see :attr:`endpoint_url`).
    :param state_dir: directory for snapshots; state is restored from it at start and saved at
        stop and every ``snapshot_interval`` seconds when it changed. ``None``: nothing persists.
    :param durable_writes: with a ``state_dir``, answer a request that changes state only after a
        snapshot containing its change is on disk (group commit: requests arriving while a snapshot
        is written share the next one). A hard kill then loses no acknowledged change. ``False``:
        a hard kill loses what changed since the last periodic snapshot.
    :param faults: fault injection config (a :class:`~localaws.faults.FaultConfig`, a dict, or the
        path of a YAML/JSON file); ``None``: the file named by ``$LOCALAWS_FAULTS`` if set, else off.
    :param lambda_idle_seconds: seconds an idle Lambda execution environment is kept for reuse
        before it is stopped; ``None``: ``$LOCALAWS_LAMBDA_IDLE_SECONDS`` if set, else 600; ``0``:
        none is kept (every invocation cold). See :mod:`localaws.services.awslambda.environments`.
    :param glue_pool_size: pre-started Glue drivers for glueetl runs (0: off); ``None``: env
        ``LOCALAWS_GLUE_POOL_SIZE``, default 2 (see :mod:`localaws.services.glue_jobs.pool`).
    :param glue_jvm_options: extra JVM options of glueetl drivers (e.g.
        :data:`localaws.runtime.QUICK_START_JVM_OPTIONS`); ``None``: env ``LOCALAWS_GLUE_JVM_OPTIONS``
        read at start, default none.
    :param alarm_evaluation_seconds: seconds between two evaluations of every CloudWatch metric
        alarm; ``None``: env ``LOCALAWS_ALARM_EVALUATION_SECONDS``, default 60 (AWS evaluates each
        minute). See :mod:`localaws.services.cloudwatch_alarms`.
    :raises localaws.faults.FaultConfigError: at construction, when the fault config is invalid.
    :raises persistence.SnapshotError: at start, when the snapshot in ``state_dir`` is unreadable.
    :raises RuntimeError: when another LocalAWS already runs in this process (moto's state is global).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, state_dir: str | Path | None = None,
                 snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL,
                 faults: _faults.FaultConfig | dict | str | Path | None = None,
                 durable_writes: bool = True, lambda_idle_seconds: float | None = None,
                 glue_pool_size: int | None = None, glue_jvm_options: str | None = None,
                 alarm_evaluation_seconds: float | None = None) -> None:
        self.host = host
        self.alarm_evaluation_seconds = alarm_evaluation_seconds
        self.glue_pool_size = glue_pool_size
        self.glue_jvm_options = glue_jvm_options
        self.port = port
        self.state_dir = Path(state_dir) if state_dir else None
        self.snapshot_interval = snapshot_interval
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._snapshotter: threading.Thread | None = None
        self._lock = RWLock()
        self.durable_writes = durable_writes and self.state_dir is not None
        self._changes = 0
        self._saved_changes = 0
        self._changes_lock = threading.Lock()
        self._commit = threading.Condition()
        self._committing = False
        self.commits = 0  # snapshots written to make requests durable
        self._started_at = 0.0
        self._work_dir: Path | None = None
        self.faults = _faults.FaultInjector.from_source(faults)
        self.lambda_idle_seconds = lambda_idle_seconds

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle
    def start(self) -> "LocalAWS":
        """Restore state (if any), bind, and serve on a background thread."""
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError(f"localaws already runs in this process at {_active.endpoint_url}")
            _active = self
        try:
            started = time.monotonic()
            install_patches()
            awslambda.POOL.configure(self.lambda_idle_seconds)  # ValueError on a bad $LOCALAWS_LAMBDA_* variable
            if self.alarm_evaluation_seconds is not None:
                RUNTIME.alarm_evaluation_seconds = self.alarm_evaluation_seconds
            if RUNTIME.alarm_evaluation_seconds <= 0:
                raise ValueError("the CloudWatch alarm evaluation interval must be positive, got "
                                 f"{RUNTIME.alarm_evaluation_seconds:g} s")
            if self.state_dir:
                persistence.load(self.state_dir)
            cloudtrail.STORE.configure()  # ValueError on a bad $LOCALAWS_CLOUDTRAIL_* variable
            cloudtrail.STORE.open(self.state_dir)  # CloudTrail events, kept apart from the snapshot
            if self.state_dir:
                for what, recover in (("Glue job runs", glue_jobs.recover_after_restart),
                                      ("Glue crawls", glue_crawler.recover_after_restart),
                                      ("Glue Data Quality runs", glue_dq.recover_after_restart),
                                      ("Athena queries", athena.recover_after_restart)):
                    failed = recover()
                    if failed:
                        log.warning("%d %s were in progress at the last snapshot; marked FAILED", failed, what)
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self.host, self.port, self._wsgi(app), threaded=True,
                                       request_handler=_QuietHandler)
            self.port = self._server.server_address[1]
            self._work_dir = Path(tempfile.mkdtemp(prefix="localaws-"))
            RUNTIME.endpoint_url = self.endpoint_url
            RUNTIME.work_dir = self._work_dir
            RUNTIME.stopping.clear()
            RUNTIME.faults = self.faults
            RUNTIME.state_change = self._state_change
            s3events.resume()  # S3 event notifications not delivered before the last stop (at least once)
            if self.glue_pool_size is not None:
                RUNTIME.glue_pool_size = self.glue_pool_size
            RUNTIME.glue_jvm_options = (self.glue_jvm_options if self.glue_jvm_options is not None
                                        else os.environ.get("LOCALAWS_GLUE_JVM_OPTIONS", "")).strip()
            self._thread = threading.Thread(target=self._server.serve_forever, name="localaws-http", daemon=True)
            self._thread.start()
            # Firehose buffers (restored ones too) are delivered by interval, under the snapshot lock.
            firehose.FLUSHER.start(self._lock.shared, self._background_change)
            if firehose.buffered_records():
                log.info("%d Firehose records were buffered at the last snapshot; they are delivered by their "
                         "buffering interval or at stop", firehose.buffered_records())
            # CloudWatch alarms (restored ones too) are evaluated every interval, under the snapshot lock.
            cloudwatch_alarms.EVALUATOR.start(self._lock.shared, self._background_change)
            if self.state_dir and self.snapshot_interval > 0:
                self._snapshotter = threading.Thread(target=self._snapshot_loop, name="localaws-snapshot", daemon=True)
                self._snapshotter.start()
            self._started_at = time.time()
            if self.host not in ("127.0.0.1", "localhost", "::1"):
                log.warning("localaws listens on %s, beyond loopback: it has no authentication", self.host)
            log.info("localaws %s listening on %s (loopback only: %s, state dir: %s%s, faults: %s) in %.2f s",
                     __version__, self.endpoint_url, self.host in ("127.0.0.1", "localhost", "::1"),
                     self.state_dir or "none",
                     (", durable writes" if self.durable_writes else f", snapshot every {self.snapshot_interval:g} s")
                     if self.state_dir else "",
                     self.faults.source or "none", time.monotonic() - started)
            if self.faults.active:
                assert self.faults.config is not None
                log.info("localaws fault injection active (%s): %s", self.faults.source, self.faults.config.summary())
        except BaseException:
            cloudtrail.STORE.close()
            with _active_lock:
                _active = None
            raise
        return self

    def stop(self) -> None:
        """Stop serving, wait for background runs briefly, write a final snapshot."""
        global _active
        RUNTIME.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for thread in list(RUNTIME.threads):
            thread.join(timeout=5)
        awslambda.shutdown()  # every Lambda execution environment: no process outlives the server
        glue_jobs.POOL.stop()
        firehose.FLUSHER.stop()  # every buffered Firehose record is delivered before the final snapshot
        cloudwatch_alarms.EVALUATOR.stop()
        if self.state_dir:
            self.snapshot()
        cloudtrail.STORE.close()
        if self._work_dir:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        RUNTIME.faults = None
        RUNTIME.state_change = contextlib.nullcontext
        with _active_lock:
            _active = None
        log.info("localaws stopped")

    def __enter__(self) -> "LocalAWS":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- fault injection
    def set_faults(self, config: _faults.FaultConfig | dict | str | Path | None) -> dict[str, Any]:
        """Replace the fault config (``None``: off); counters start over. Returns :meth:`fault_state`.

        :raises localaws.faults.FaultConfigError: when the config is invalid (the old one stays).
        """
        if config is None:
            self.faults.configure(None)
        else:
            self.faults.configure(*_faults.load(config))
        return self.fault_state()

    def fault_state(self) -> dict[str, Any]:
        """The fault config and counters, as ``GET /_localaws/faults`` returns them."""
        return self.faults.state()

    # -- snapshots
    def snapshot(self) -> Path | None:
        """Write a snapshot now (no-op without a state dir); returns its path."""
        if not self.state_dir:
            return None
        changes = self._changes  # read before the lock: every change counted so far is then in the snapshot
        path, size = persistence.save(self.state_dir, self._lock.exclusive())
        self._saved_changes = max(self._saved_changes, changes)
        log.debug("snapshot %s written (%d bytes)", path, size)
        return path

    def _count_change(self) -> int:
        with self._changes_lock:
            self._changes += 1
            return self._changes

    def _wait_durable(self, change: int) -> None:
        """Return once a snapshot holds change number ``change`` (group commit: one thread writes
        the snapshot, the others that arrived meanwhile wait for it or for the next one).

        :raises OSError: when the snapshot cannot be written (the request then fails with HTTP 500).
        """
        with self._commit:
            while self._saved_changes < change:
                if self._committing:
                    self._commit.wait()
                    continue
                self._committing = True
                self._commit.release()
                try:
                    self.snapshot()
                    self.commits += 1
                finally:
                    self._commit.acquire()
                    self._committing = False
                    self._commit.notify_all()

    def _background_change(self) -> None:
        """Count a change made outside a request (a Firehose delivery, an alarm's state change)
        and, with durable writes, wait until a snapshot holds it."""
        change = self._count_change()
        if self.durable_writes:
            self._wait_durable(change)

    @contextlib.contextmanager
    def _state_change(self) -> Iterator[None]:
        """``RUNTIME.state_change``: background work changes state as a request would (under the
        shared lock, counted, so the next periodic snapshot saves it; nobody waits for durability)."""
        with self._lock.shared():
            self._count_change()
            yield

    def _snapshot_loop(self) -> None:
        while not RUNTIME.stopping.wait(self.snapshot_interval):
            if self._changes != self._saved_changes:
                try:
                    self.snapshot()
                except Exception:  # noqa: BLE001 - keep serving; the next period tries again
                    log.exception("periodic snapshot failed")

    # -- WSGI
    def _wsgi(self, moto_app: DomainDispatcherApplication) -> Callable:
        # Every call moto or localaws answers is a CloudTrail event (services/cloudtrail), recorded
        # inside the snapshot lock, before the call is answered.
        app = cloudtrail.recording(_answer_not_implemented(moto_app),
                                   read_only=lambda op: op.name.startswith(_READ_PREFIXES))

        def application(environ: dict[str, Any], start_response: Callable) -> Any:
            path = environ.get("PATH_INFO", "")
            if path.startswith("/_localaws/"):
                return self._admin(path, environ, start_response)
            if self.faults.active:
                injected = self.faults.intercept(environ)
                if injected is not None:
                    status, headers, body = injected
                    start_response(status, headers)
                    return [body]
            # S3 event notifications the request makes go out once it is durable (services/s3events.py).
            batch = s3events.Batch(environ)
            try:
                with batch.collecting():
                    return serve(environ, batch.wrap(start_response))
            finally:
                batch.release()

        def serve(environ: dict[str, Any], start_response: Callable) -> Any:
            if self.state_dir is None:  # nothing persists: no snapshot to coordinate with
                return app(environ, start_response)
            op = _faults.identify(environ)
            changes = _changes_state(environ, op)
            if op is not None and op.service == "lambda" and op.name.startswith("Invoke"):
                # A synchronous invocation lasts as long as the handler, whose own requests (S3 PUTs)
                # must be able to commit meanwhile: it must not hold the lock a snapshot waits for.
                result = app(environ, start_response)
                change = self._count_change() if changes else 0
            else:
                with self._lock.shared():
                    change = self._count_change() if changes else 0  # inside the lock: see snapshot()
                    result = app(environ, start_response)
            if change and self.durable_writes:
                self._wait_durable(change)
            return result

        return application

    def _admin(self, path: str, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path == "/_localaws/health":
            body: Any = {
                "status": "ok",
                "version": __version__,
                "endpoint": self.endpoint_url,
                "state_dir": str(self.state_dir) if self.state_dir else None,
                "uptime_seconds": round(time.time() - self._started_at, 3),
                "faults": self.faults.source,
                "durable_writes": self.durable_writes,
                "commits": self.commits,
            }
        elif path == "/_localaws/sns/messages":
            body = {"messages": sns.published_messages(query.get("topic"))}
        elif path == "/_localaws/faults":
            return self._admin_faults(environ, start_response)
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [json.dumps({"error": f"no such localaws endpoint {path}"}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body, default=str).encode()]

    def _admin_faults(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        """GET: config + counters; POST (JSON config): replace, counters start over; DELETE: off."""
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                raw = environ["wsgi.input"].read(length) if length else b""
                try:
                    data = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise _faults.FaultConfigError(f"the body is not JSON: {exc}") from None
                config = _faults.validate(data, "fault config")
                self.faults.configure(config, "POST /_localaws/faults")
            elif method == "DELETE":
                self.faults.configure(None)
            elif method not in ("GET", "HEAD"):
                start_response("405 Method Not Allowed", [("Content-Type", "application/json"),
                                                          ("Allow", "GET, POST, DELETE")])
                return [json.dumps({"error": f"{method} is not allowed on /_localaws/faults"}).encode()]
        except _faults.FaultConfigError as exc:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"error": str(exc)}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(self.fault_state()).encode()]
