"""localaws's Kinesis Data Firehose: DirectPut streams delivering to S3 as AWS buffers them.

A package in moto's layout:

* :mod:`.prefixes` - S3 object keys: the prefix rules and expressions (``!{timestamp:...}``,
  ``!{firehose:...}``, ``!{partitionKeyFromQuery:...}``) and the key suffix;
* :mod:`.models` - buffers (kept on moto's ``DeliveryStream``, so they persist with it), dynamic
  partitioning with jq, delivery to S3, CloudWatch metrics, and the background :data:`FLUSHER`;
* :mod:`.responses` - the API: :func:`install` patches moto's PutRecord, PutRecordBatch,
  CreateDeliveryStream and UpdateDestination; the rest of the API stays moto's.

docs/localaws.md ("Kinesis Data Firehose") documents the behaviour.
"""

from localaws.services.firehose.models import FLUSHER, buffered_records
from localaws.services.firehose.responses import install

__all__ = ["FLUSHER", "buffered_records", "install"]
