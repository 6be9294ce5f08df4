"""localaws's CloudTrail: every AWS API call served is recorded as a CloudTrail event, and
``LookupEvents`` answers with AWS's filters and paging.

A package in moto's layout:

* :mod:`.records` - the CloudTrail record of one call (userIdentity from the SigV4 access key,
  requestParameters with secrets redacted, errorCode, management vs data event), pure functions;
* :mod:`.store` - the bounded event store :data:`STORE` (max count and retention days), kept in an
  append-only JSON-lines file in the state directory so events survive restarts;
* :mod:`.responses` - the WSGI middleware :func:`recording` and moto's CloudTrail ``LookupEvents``.

docs/localaws.md ("CloudTrail") documents the behaviour and where it differs from AWS.
"""

from localaws.services.cloudtrail import responses
from localaws.services.cloudtrail.responses import recording
from localaws.services.cloudtrail.store import STORE


def install() -> None:
    """Add ``LookupEvents`` to moto's CloudTrail (idempotent)."""
    responses.install()


__all__ = ["STORE", "install", "recording"]
