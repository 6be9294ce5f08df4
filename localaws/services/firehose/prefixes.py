"""S3 object keys of a Firehose stream: prefix validation and evaluation, and the key suffix.

The rules come from two pages of the Amazon Data Firehose Developer Guide:

* "Understand custom prefixes for Amazon S3 objects" (s3-prefixes): the ``!{namespace:value}``
  expressions (``timestamp`` with Java DateTimeFormatter patterns, ``firehose:random-string`` of
  11 characters, ``firehose:error-output-type``, ``partitionKeyFromQuery``,
  ``partitionKeyFromLambda``) and the "Semantic rules": a Prefix without a ``timestamp``
  expression gets ``!{timestamp:yyyy/MM/dd/HH/}`` appended; ``!{`` only in expressions;
  ErrorOutputPrefix may be null only if Prefix has no expressions; an ErrorOutputPrefix with
  expressions must contain ``!{firehose:error-output-type}``; Prefix must not; neither may be longer
  than 512 characters once evaluated. Timestamps are the approximate arrival time of the oldest
  record in the object, in UTC.
* "Configure Amazon S3 object name format" (basic-deliver, s3-object-name): the suffix
  ``DeliveryStreamName-DeliveryStreamVersion-YYYY-MM-dd-HH-MM-SS-RandomString``.

The appended default is taken literally from the rule: ``myapp`` becomes ``myapp2018/08/27/10/``
(no slash is inserted; end the prefix with ``/`` to get a folder), as the rule's text says. With
dynamic partitioning nothing is appended (the "Dynamic partitioning" page's example key has none).
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime

#: AWS's InvalidArgumentException text for a prefix rule, as CreateDeliveryStream answers it
#: (the "Ths" is AWS's; quoted in hashicorp/terraform-provider-aws pull request 13416).
CONSTRAINT = "Ths supplied prefix(es) do not satisfy the following constraint: {}"
MAX_EVALUATED = 512
DEFAULT_TIMESTAMP = "yyyy/MM/dd/HH/"
NAMESPACES = ("firehose", "timestamp", "partitionKeyFromQuery", "partitionKeyFromLambda")
_EXPRESSION = re.compile(r"!\{([^:}]*):([^}]*)\}")
_RANDOM_ALPHABET = string.ascii_lowercase + string.digits


class PrefixError(ValueError):
    """A prefix breaks one of the semantic rules; the message is AWS's constraint text."""


def expressions(prefix: str) -> list[tuple[str, str]]:
    """The ``(namespace, value)`` of each ``!{namespace:value}`` in ``prefix``."""
    return _EXPRESSION.findall(prefix or "")


def _check_timestamp_pattern(pattern: str) -> None:
    for kind, text in _tokens(pattern):
        if kind == "letters" and text[0] not in _FIELDS:
            raise PrefixError(CONSTRAINT.format(
                f"The timestamp pattern '{pattern}' uses the letter '{text[0]}', which localaws does not evaluate "
                f"(supported Java DateTimeFormatter letters: {' '.join(sorted(_FIELDS))})"))


def validate(prefix: str | None, error_prefix: str | None, *, dynamic_partitioning: bool,
             partition_keys: set[str] | None = None) -> None:
    """Check a destination's Prefix and ErrorOutputPrefix against the semantic rules.

    :param partition_keys: with dynamic partitioning, the keys the MetadataExtractionQuery makes
        (``None``: unknown, not checked).
    :raises PrefixError: naming the broken rule, with AWS's message.
    """
    prefix, error_prefix = prefix or "", error_prefix or ""
    for field, value in (("Prefix", prefix), ("ErrorOutputPrefix", error_prefix)):
        if value.count("!{") != len(expressions(value)):
            raise PrefixError(CONSTRAINT.format(f"The sequence '!{{' can only appear in !{{namespace:value}} "
                                                f"expressions ({field} '{value}')"))
        for namespace, value_ in expressions(value):
            if namespace not in NAMESPACES:
                raise PrefixError(CONSTRAINT.format(f"Unknown namespace '{namespace}' in {field} '{value}' "
                                                    f"(valid: {', '.join(NAMESPACES)})"))
            if namespace == "timestamp":
                _check_timestamp_pattern(value_)
            if namespace == "firehose" and value_ not in ("random-string", "error-output-type"):
                raise PrefixError(CONSTRAINT.format(f"Unknown firehose namespace value '{value_}' in {field} "
                                                    "(valid: random-string, error-output-type)"))
            if namespace.startswith("partitionKey") and not dynamic_partitioning:
                raise PrefixError(CONSTRAINT.format(f"{field} '{value}' uses !{{{namespace}:{value_}}} but dynamic "
                                                    "partitioning is not enabled"))
    if ("firehose", "error-output-type") in expressions(prefix):
        raise PrefixError(CONSTRAINT.format("Prefix cannot contain !{firehose:error-output-type}"))
    if expressions(prefix) and not error_prefix:
        raise PrefixError(CONSTRAINT.format("ErrorOutputPrefix cannot be null or empty when Prefix contains "
                                            "expressions"))
    if expressions(error_prefix) and ("firehose", "error-output-type") not in expressions(error_prefix):
        raise PrefixError(CONSTRAINT.format("ErrorOutputPrefix must contain !{firehose:error-output-type} when "
                                            "it contains expressions"))
    if dynamic_partitioning:
        if not error_prefix:
            raise PrefixError(CONSTRAINT.format("ErrorOutputPrefix cannot be null or empty when dynamic "
                                                "partitioning is enabled"))
        used = {v for n, v in expressions(prefix) if n == "partitionKeyFromQuery"}
        if not used and not any(n == "partitionKeyFromLambda" for n, _ in expressions(prefix)):
            raise PrefixError(CONSTRAINT.format("Prefix must contain at least one !{partitionKeyFromQuery:key} or "
                                                "!{partitionKeyFromLambda:key} expression when dynamic partitioning "
                                                "is enabled"))
        if partition_keys is not None and used - partition_keys:
            raise PrefixError(CONSTRAINT.format(
                f"Prefix uses partition key(s) {', '.join(sorted(used - partition_keys))} that the "
                f"MetadataExtractionQuery does not define (it defines: {', '.join(sorted(partition_keys)) or 'none'})"))


def effective_prefix(prefix: str | None, *, dynamic_partitioning: bool) -> str:
    """The Prefix as evaluated: with ``!{timestamp:yyyy/MM/dd/HH/}`` appended when it has no
    ``timestamp`` expression (and dynamic partitioning is off)."""
    prefix = prefix or ""
    if dynamic_partitioning or any(n == "timestamp" for n, _ in expressions(prefix)):
        return prefix
    return prefix + "!{timestamp:" + DEFAULT_TIMESTAMP + "}"


def effective_error_prefix(prefix: str | None, error_prefix: str | None) -> str:
    """The ErrorOutputPrefix as evaluated: when null (Prefix then has no expressions),
    ``<Prefix><error-output-type>/yyyy/MM/dd/HH/`` (semantic rules; the slash after the error type
    follows the page's examples)."""
    if error_prefix:
        return error_prefix
    return (prefix or "") + "!{firehose:error-output-type}/!{timestamp:" + DEFAULT_TIMESTAMP + "}"


def random_string() -> str:
    """``!{firehose:random-string}``: 11 random characters."""
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(11))


def evaluate(prefix: str, when: datetime, *, partition_keys: dict[str, str] | None = None,
             error_output_type: str | None = None) -> str:
    """``prefix`` with every expression replaced.

    :param when: the arrival time (UTC) of the oldest record of the object.
    :raises KeyError: a ``partitionKeyFromQuery`` key not in ``partition_keys``.
    :raises PrefixError: the result is longer than 512 characters.
    """
    def replace(match: re.Match[str]) -> str:
        namespace, value = match.group(1), match.group(2)
        if namespace == "timestamp":
            return format_timestamp(value, when)
        if namespace == "firehose":
            return random_string() if value == "random-string" else (error_output_type or "")
        return (partition_keys or {})[value]

    out = _EXPRESSION.sub(replace, prefix)
    if len(out) > MAX_EVALUATED:
        raise PrefixError(CONSTRAINT.format(f"The evaluated prefix is {len(out)} characters, more than "
                                            f"{MAX_EVALUATED}"))
    return out


def suffix(stream: str, version: str, when: datetime, random: str) -> str:
    """``<stream>-<version>-YYYY-MM-dd-HH-MM-SS-<random>`` (s3-object-name)."""
    return f"{stream}-{version}-{when:%Y-%m-%d-%H-%M-%S}-{random}"


# --- Java DateTimeFormatter (the subset of pattern letters Firehose prefixes use) ----------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _number(value: int, width: int) -> str:
    return str(value).zfill(width)


def _year(when: datetime, n: int) -> str:
    return _number(when.year % 100, 2) if n == 2 else _number(when.year, n)


def _month(when: datetime, n: int) -> str:
    if n >= 4:
        return _MONTHS[when.month - 1]
    if n == 3:
        return _MONTHS[when.month - 1][:3]
    return _number(when.month, n)


def _weekday(when: datetime, n: int) -> str:
    return _DAYS[when.weekday()] if n >= 4 else _DAYS[when.weekday()][:3]


#: Pattern letter -> formatter(datetime, count): java.time.format.DateTimeFormatter's meanings.
_FIELDS = {
    "y": _year, "u": _year, "M": _month, "L": _month,
    "d": lambda w, n: _number(w.day, n),
    "D": lambda w, n: _number(w.timetuple().tm_yday, n),
    "H": lambda w, n: _number(w.hour, n),
    "m": lambda w, n: _number(w.minute, n),
    "s": lambda w, n: _number(w.second, n),
    "S": lambda w, n: _number(w.microsecond, 6)[:n].ljust(n, "0"),
    "E": _weekday,
    "a": lambda w, n: "AM" if w.hour < 12 else "PM",
    "h": lambda w, n: _number((w.hour % 12) or 12, n),
}


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """``("letters", "yyyy")`` runs and ``("literal", text)`` pieces: letters are pattern fields,
    text in single quotes is literal (``''`` is a quote), other characters are literal."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            end = i + 1
            text = ""
            while end < len(pattern):
                if pattern[end] == "'":
                    if end + 1 < len(pattern) and pattern[end + 1] == "'":
                        text += "'"
                        end += 2
                        continue
                    break
                text += pattern[end]
                end += 1
            out.append(("literal", text if end > i + 1 else "'"))
            i = end + 1
        elif c.isascii() and c.isalpha():
            end = i
            while end < len(pattern) and pattern[end] == c:
                end += 1
            out.append(("letters", pattern[i:end]))
            i = end
        else:
            out.append(("literal", c))
            i += 1
    return out


def format_timestamp(pattern: str, when: datetime) -> str:
    """``pattern`` (a Java DateTimeFormatter pattern, e.g. ``yyyy/MM/dd/HH``) applied to ``when``."""
    parts = []
    for kind, text in _tokens(pattern):
        parts.append(_FIELDS[text[0]](when, len(text)) if kind == "letters" else text)
    return "".join(parts)
