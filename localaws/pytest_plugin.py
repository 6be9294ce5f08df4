"""pytest fixtures for localaws: ``pytest_plugins = ["localaws.pytest_plugin"]``.

* ``localaws`` (session): a running :class:`~localaws.server.LocalAWS` on a free loopback port.
  Its ``endpoint_url`` is also exported as ``AWS_ENDPOINT_URL`` with placeholder credentials and
  region ``us-east-1``, so plain ``boto3.client("s3")`` talks to it and never to AWS.
* ``aws_client`` (function): ``aws_client("s3")`` -> a boto3 client for the endpoint.
* ``localaws_faults`` (function): ``localaws_faults({"rules": [...]})`` sets the session server's
  fault injection config for one test (returns the :class:`~localaws.faults.FaultInjector`;
  ``.state()`` has the counters); the previous config is put back afterwards.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import pytest

from localaws.server import LocalAWS

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def localaws() -> Iterator[LocalAWS]:
    saved = {k: os.environ.get(k) for k in [*_ENV, "AWS_ENDPOINT_URL"]}
    server = LocalAWS(port=0).start()
    os.environ.update(_ENV)
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def aws_client(localaws: LocalAWS) -> Callable:
    import boto3

    def make(service: str, **kwargs):
        return boto3.client(service, endpoint_url=localaws.endpoint_url, region_name="us-east-1", **kwargs)

    return make


@pytest.fixture
def localaws_faults(localaws: LocalAWS) -> Iterator[Callable[[Any], Any]]:
    injector = localaws.faults
    previous = (injector.config, injector.source)

    def apply(config: Any):
        localaws.set_faults(config)
        return injector

    try:
        yield apply
    finally:
        injector.configure(*previous)
