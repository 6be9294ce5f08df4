"""SNS: keep every published message with its publish time, for ``localaws sns messages``.

moto delivers to subscriptions (SQS queues receive the messages) and keeps
``Topic.sent_notifications`` without a time; this wrapper adds a record per message.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from moto.sns import models as sns_models

_original_publish = sns_models.Topic.publish


def _delivered(message: str, message_structure: str | None) -> str:
    """The text subscribers get: with ``MessageStructure=json`` (how Airflow's SnsHook publishes)
    the message is ``{"default": text, <protocol>: text...}`` and ``default`` is what is delivered."""
    if message_structure == "json":
        try:
            return json.loads(message).get("default", message)
        except (ValueError, AttributeError):
            return message
    return message


def _publish(self: sns_models.Topic, message: str, subject: str | None = None,
             message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
             deduplication_id: str | None = None, message_structure: str | None = None) -> str:
    message_id = _original_publish(self, message, subject=subject, message_attributes=message_attributes,
                                   group_id=group_id, deduplication_id=deduplication_id,
                                   message_structure=message_structure)
    if not hasattr(self, "localaws_messages"):
        self.localaws_messages = []
    self.localaws_messages.append(
        {
            "topic_arn": self.arn,
            "topic": self.name,
            "message_id": message_id,
            "subject": subject,
            "message": _delivered(message, message_structure),
            "attributes": {k: v.get("Value", v.get("StringValue")) if isinstance(v, dict) else v
                           for k, v in (message_attributes or {}).items()},
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
    )
    return message_id


def published_messages(topic: str | None = None) -> list[dict[str, Any]]:
    """Messages published so far, oldest first, optionally only those of topic ``topic`` (name or ARN).

    Each is ``{topic_arn, topic, message_id, subject, message, attributes, time}`` (ISO-8601 UTC).
    """
    out: list[dict[str, Any]] = []
    for account in sns_models.sns_backends.values():
        for backend in account.values():
            for t in backend.topics.values():
                if topic and topic not in (t.name, t.arn):
                    continue
                out.extend(getattr(t, "localaws_messages", []))
    return sorted(out, key=lambda m: m["time"])


def install() -> None:
    """Patch moto's SNS Topic.publish (idempotent)."""
    sns_models.Topic.publish = _publish  # type: ignore[method-assign]
