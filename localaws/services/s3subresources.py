"""S3 operations moto does not know are refused (HTTP 501), not answered as another operation.

moto's S3 dispatches a bucket or object request on the sub-resources it knows in the query string
(``?acl``, ``?tagging``, ``?uploads``, ...); a sub-resource it does not know falls through to the
plain GET/PUT/DELETE of the bucket or object. So ``GetBucketAbac`` (``GET /bucket?abac``) got an
empty 200 that botocore parses as ``{"AbacStatus": {}}``, ``GetBucketMetricsConfiguration`` an
empty configuration instead of ``NoSuchConfiguration``, and a ``PutBucketRequestPayment`` was
acknowledged and forgotten: green but wrong, the worst answer an emulator can give.

The operations here are those of botocore's S3 model whose request URI carries a sub-resource
key that moto's ``moto/s3/responses.py`` (moto 5.2) never reads (:data:`UNKNOWN_TO_MOTO`). A
request is matched to its operation with the botocore routing of localaws/faults.py, only when
its query string has one of those keys, so other requests pay one set intersection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

#: Sub-resource keys of S3 operations that moto 5.2's S3 responses never read (checked by grepping
#: moto/s3/responses.py; tests/localaws/test_coverage.py checks each operation answers 501).
UNKNOWN_TO_MOTO = frozenset({
    "abac", "analytics", "annotation", "intelligent-tiering", "metadataAnnotationTable", "metadataConfiguration",
    "metadataInventoryTable", "metadataJournalTable", "metadataTable", "metrics", "renameObject", "requestPayment",
    "session", "torrent",
})

_operations: frozenset[str] | None = None


def refused_operations() -> frozenset[str]:
    """Names of the S3 operations localaws refuses (their request URI has a key of :data:`UNKNOWN_TO_MOTO`)."""
    global _operations
    if _operations is None:
        import botocore.session

        model = botocore.session.get_session().get_service_model("s3")
        names = set()
        for name in model.operation_names:
            query = model.operation_model(name).http.get("requestUri", "/").partition("?")[2]
            if any(item.partition("=")[0] in UNKNOWN_TO_MOTO for item in query.split("&") if item):
                names.add(name)
        _operations = frozenset(names)
    return _operations


def refused(environ: dict[str, Any]) -> Any:
    """The :class:`localaws.faults.Operation` of an S3 request localaws must refuse, else ``None``."""
    query = environ.get("QUERY_STRING", "")
    if not query or UNKNOWN_TO_MOTO.isdisjoint(parse_qs(query, keep_blank_values=True)):
        return None
    from localaws import faults

    op = faults.identify(environ)
    if op is None or op.service != "s3" or op.name not in refused_operations():
        return None
    return op
