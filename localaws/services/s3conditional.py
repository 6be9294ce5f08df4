"""S3 conditional writes made atomic: ``PutObject`` with ``If-None-Match: *`` or ``If-Match``.

moto checks the condition and then stores the object as two steps, and localaws serves each
request on its own thread, so two PUTs with ``If-None-Match: *`` could both succeed. S3 guarantees
that only one does (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html);
the Glue job's partition lease relies on it. Conditional PUTs (and DELETEs, which can race them)
run one at a time here; unconditional PUTs are not serialised.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.s3.responses import S3Response

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Patch moto's S3Response.put_object and delete_object (idempotent)."""
    global _installed
    if _installed:
        return
    original_put = S3Response.put_object
    original_delete = S3Response.delete_object

    @functools.wraps(original_put)
    def put_object(self: S3Response) -> Any:
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            with _lock:
                return original_put(self)
        return original_put(self)

    @functools.wraps(original_delete)
    def delete_object(self: S3Response) -> Any:
        with _lock:
            return original_delete(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]
    S3Response.delete_object = delete_object  # type: ignore[method-assign]
    _installed = True
