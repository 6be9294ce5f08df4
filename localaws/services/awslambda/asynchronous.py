"""Asynchronous Lambda invocations (``InvocationType=Event``, S3 event notifications) with AWS's retries.

AWS queues an asynchronous invocation and answers at once; when the function returns an error,
Lambda runs it two more times, waiting one minute before the first retry and two minutes before
the second ("Asynchronous invocation" / "Error handling and automatic retries in Lambda",
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html and
https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html). ``PutFunctionEventInvokeConfig``
sets ``MaximumRetryAttempts`` (0-2) and ``MaximumEventAgeInSeconds`` (60-21600, default 6 hours): an
event older than that is discarded instead of being retried.

Every attempt of one invocation has the same request id (``context.aws_request_id`` and the
START/END/REPORT lines of ``/aws/lambda/<name>``), as on AWS, so the retries of one event are
visible in the function's log group. localaws waits :attr:`localaws.runtime.Runtime.lambda_retry_delays`
(default 60 and 120 s; env ``LOCALAWS_LAMBDA_RETRY_DELAYS``) between attempts.

Concurrency: at most ``ReservedConcurrentExecutions`` (PutFunctionConcurrency) invocations of a
function run at once, else at most :attr:`localaws.runtime.Runtime.lambda_async_concurrency` (env
``LOCALAWS_LAMBDA_ASYNC_CONCURRENCY``, default 4: AWS's account limit is 1000 and would start that
many processes here); the others wait in the queue, as AWS keeps throttled asynchronous events, and
are discarded if they grow older than ``MaximumEventAgeInSeconds`` while waiting. A reserved
concurrency of 0 runs none.

Not emulated: destinations (``DestinationConfig`` OnSuccess / OnFailure) and dead-letter queues
(an event whose retries are exhausted is logged by localaws and dropped), throttling retries
(localaws never throttles), and persistence of plain ``Invoke`` Event invocations across a restart
(S3 event notifications are persisted by :mod:`localaws.services.s3events`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from moto.awslambda import models as lambda_models

from localaws.runtime import RUNTIME, log
from localaws.services.awslambda.models import run_invocation

#: AWS's defaults: 2 retries, events kept up to 6 hours (API_PutFunctionEventInvokeConfig).
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21600


def retry_policy(fn: lambda_models.LambdaFunction) -> tuple[int, int]:
    """``(MaximumRetryAttempts, MaximumEventAgeInSeconds)`` of ``fn``'s event invoke config, else AWS's defaults."""
    configs = getattr(fn, "event_invoke_config", None) or []
    config = configs[-1].config if configs else {}
    return (int(config.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
            int(config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)))


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slot(fn: lambda_models.LambdaFunction) -> tuple[threading.BoundedSemaphore, int]:
    """The semaphore bounding ``fn``'s concurrent asynchronous invocations, and its size."""
    reserved = getattr(fn, "reserved_concurrency", None)
    limit = int(reserved) if reserved not in (None, "") else RUNTIME.lambda_async_concurrency
    with _slots_lock:
        slot = _slots.get((fn.function_arn, limit))
        if slot is None:
            slot = _slots[(fn.function_arn, limit)] = threading.BoundedSemaphore(max(limit, 1))
    return slot, limit


def invoke_async(fn: lambda_models.LambdaFunction, event: bytes, request_id: str | None = None,
                 on_done: Callable[[str], None] | None = None, enqueued_at: float | None = None) -> str:
    """Run ``fn`` with ``event`` (JSON bytes) on a background thread, retrying function errors; returns
    the request id at once.

    :param on_done: called with the outcome (``"succeeded"``, ``"retries exhausted"``, ``"event too
        old"``, ``"not run: <reason>"``) when the invocation is finished with; not called when localaws
        stops meanwhile (the caller may then run it again after a restart).
    :param enqueued_at: epoch seconds the event was queued (for ``MaximumEventAgeInSeconds``); now if None.
    """
    request_id = request_id or str(uuid.uuid4())
    RUNTIME.spawn(f"lambda-async-{fn.function_name}", _run, fn, event, request_id, on_done,
                  time.time() if enqueued_at is None else enqueued_at)
    return request_id


def _run(fn: lambda_models.LambdaFunction, event: bytes, request_id: str, on_done: Callable[[str], None] | None,
         enqueued_at: float) -> None:
    retries, max_age = retry_policy(fn)
    delays = RUNTIME.lambda_retry_delays or (0.0,)
    attempt = 0
    while True:
        attempt += 1
        slot, limit = _slot(fn)
        while limit == 0 or not slot.acquire(timeout=0.5):  # throttled: wait in the queue
            if time.time() - enqueued_at > max_age:
                log.warning("lambda %s: asynchronous invocation %s discarded: older than %d s while waiting for "
                            "concurrency (%d)", fn.function_name, request_id, max_age, limit)
                if on_done is not None:
                    on_done("event too old")
                return
            if RUNTIME.stopping.wait(0.5 if limit == 0 else 0):
                return
            slot, limit = _slot(fn)
        try:
            result = run_invocation(fn, event, request_id)
            error = result.payload.decode(errors="replace")[:300] if result.function_error else None
        except ValueError as exc:  # not a python runtime: AWS would run it; localaws cannot
            outcome = f"not run: {exc}"
            log.warning("lambda %s: asynchronous invocation %s %s", fn.function_name, request_id, outcome)
            break
        except Exception:  # noqa: BLE001 - a background invocation has no caller to raise to
            if RUNTIME.stopping.is_set():
                return
            log.exception("lambda %s: asynchronous invocation %s failed to run", fn.function_name, request_id)
            error = "localaws could not run the invocation"
        finally:
            slot.release()
        if error is None:
            outcome = "succeeded"
            break
        if RUNTIME.stopping.is_set():
            return
        if attempt > retries:
            outcome = "retries exhausted"
            break
        delay = delays[min(attempt - 1, len(delays) - 1)]
        if time.time() + delay - enqueued_at > max_age:
            outcome = "event too old"
            break
        log.info("lambda %s: asynchronous invocation %s attempt %d failed (%s); retry %d of %d in %g s",
                 fn.function_name, request_id, attempt, error, attempt, retries, delay)
        if RUNTIME.stopping.wait(delay):
            return
    if outcome != "succeeded":
        log.warning("lambda %s: asynchronous invocation %s discarded after %d attempt(s) (%s); localaws has no "
                    "on-failure destination or dead-letter queue", fn.function_name, request_id, attempt, outcome)
    if on_done is not None:
        on_done(outcome)
