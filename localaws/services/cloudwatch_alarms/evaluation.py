"""How a CloudWatch metric alarm's state is decided: pure functions, no moto, no clock.

Sources (AWS CloudWatch User Guide, "Using Amazon CloudWatch alarms"):

* "Evaluating an alarm": ``Period`` makes one datapoint per period; ``EvaluationPeriods`` (N) is how
  many of the most recent datapoints are evaluated; ``DatapointsToAlarm`` (M, default N) how many of
  them must breach for ``ALARM`` ("M out of N"), else ``OK``.
* "How alarm state is evaluated when data is missing": CloudWatch retrieves more datapoints than N
  (the *evaluation range*; for N=3 the documented example retrieves 5). localaws retrieves N + 2
  periods (:func:`evaluation_range`), the documented example's choice; AWS does not document the
  number for other N. Then:

  - at least N datapoints exist in the range: the N most recent existing ones are evaluated and
    ``TreatMissingData`` is not used;
  - fewer: ``breaching`` / ``notBreaching`` fill the missing ones (as few as possible: N minus the
    existing ones) as breaching / not breaching; ``missing`` / ``ignore`` evaluate only the
    existing ones. No datapoint at all: ``missing`` -> ``INSUFFICIENT_DATA``, ``ignore`` keeps the
    state. Existing datapoints of which fewer than M breach: ``OK`` if any of them does not breach,
    else (only breaching ones, too few) ``INSUFFICIENT_DATA`` (``missing``) or unchanged (``ignore``).
  - "Avoiding premature transitions to alarm state": with ``missing``, when all existing datapoints
    breach and the oldest of them is at least M periods old, the alarm goes to ``ALARM``.

  These rules reproduce every row of both tables of that page (tests/localaws/test_cloudwatch_alarms.py
  checks them, ``test_documented_missing_data_tables``).
* "Percentile-based alarms and low data samples": with ``EvaluateLowSampleCountPercentile=ignore``
  the state does not change while a period has fewer than 10/(1-p) samples (p >= 0.5) or 10/p.

The reason texts follow the form of AWS's published notifications (2020-2025), e.g. ``Threshold
Crossed: 1 out of the last 1 datapoints [4000.0 (06/02/20 03:09:00)] was greater than the threshold
(3000.0) (minimum 1 datapoint for OK -> ALARM transition).`` (the breaching datapoints, newest
first, dated ``dd/mm/yy HH:MM:SS`` at the period start, UTC; from INSUFFICIENT_DATA too) and
``Threshold Crossed: 1 out of the last 1 datapoints [3.6266666666666665 (26/08/22 03:40:00)] was not
less than the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).`` (values as Java's
``Double.toString``, i.e. Python's ``repr``); all-missing ones ``Threshold Crossed: no datapoints
were received for 3 periods and 3 missing datapoints were treated as [Breaching].``; ``Insufficient
Data: 1 datapoint was unknown.``. The older short form (``1 datapoint [0.0 (...)] was not greater
than the threshold (1.0).``) is not used.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"

#: ComparisonOperator -> (test, words in the reason).
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
#: The anomaly-detection operators: they compare with a band (ThresholdMetricId), not a Threshold.
BAND_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)$")


@dataclass
class Spec:
    """What evaluation needs of an alarm (see :func:`spec_of` in models)."""

    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    operator: str
    treat_missing_data: str = "missing"
    statistic: str | None = None  # one of STATISTICS, or None with extended_statistic
    extended_statistic: str | None = None  # "p90", "p99.9"
    unit: str | None = None
    low_sample_count: str | None = None  # EvaluateLowSampleCountPercentile: "evaluate" | "ignore"


@dataclass
class Samples:
    """The data of one period: raw values and statistic sets (sum, minimum, maximum, count)."""

    values: list[float] = field(default_factory=list)
    sets: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def count(self) -> float:
        return len(self.values) + sum(s[3] for s in self.sets)


@dataclass
class Datapoint:
    start: float  # epoch seconds of the period start
    value: float
    sample_count: float


@dataclass
class Outcome:
    """The evaluation's verdict: ``state`` None keeps the current state."""

    state: str | None
    reason: str = ""
    reason_data: dict[str, Any] = field(default_factory=dict)


def evaluation_range(spec: Spec) -> int:
    """Periods retrieved per evaluation: N + 2 (the documented example: 5 for N = 3)."""
    return spec.evaluation_periods + 2


def statistic(spec: Spec, samples: Samples) -> float | None:
    """The period's value of the alarm's statistic; None when it cannot be computed (a percentile of
    statistic sets only: AWS computes percentiles from raw values, so it has no datapoint either)."""
    if samples.count == 0:
        return None
    if spec.statistic == "SampleCount":
        return float(samples.count)
    if spec.statistic in ("Sum", "Average"):
        total = sum(samples.values) + sum(s[0] for s in samples.sets)
        return total if spec.statistic == "Sum" else total / samples.count
    if spec.statistic == "Minimum":
        return min([*samples.values, *(s[1] for s in samples.sets)])
    if spec.statistic == "Maximum":
        return max([*samples.values, *(s[2] for s in samples.sets)])
    if not samples.values:
        return None
    return percentile(samples.values, float(spec.extended_statistic[1:]))  # type: ignore[index]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it
    (AWS does not document its estimator; on few values nearest-rank is exact)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def iso(ts: float) -> str:
    """AWS's timestamp form in alarm JSON: ``2026-12-01T10:00:25.123+0000``."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _short(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d/%m/%y %H:%M:%S")


def number(v: float) -> str:
    """A value as Java's ``Double.toString`` writes it (AWS's reason texts): the shortest digits
    that read back, plain between 10^-3 and 10^7 (``4000.0``), else ``1.0E10`` / ``1.5E-4``."""
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if v == 0 or 1e-3 <= abs(v) < 1e7:
        return repr(v)  # Python's repr is shortest-digits and plain in this range
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{len(text) - 1 + int(exponent)}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _listing(points: list[Datapoint]) -> str:
    return ", ".join(f"{number(p.value)} ({_short(p.start)})" for p in sorted(points, key=lambda p: -p.start))


def _low_samples(spec: Spec, points: list[Datapoint]) -> bool:
    if not spec.extended_statistic or spec.low_sample_count != "ignore":
        return False
    pct = float(spec.extended_statistic[1:])  # 10/(1-p) and 10/p, in percent so that p90 needs exactly 100
    needed = (1000 / (100 - pct) if pct < 100 else math.inf) if pct >= 50 else (1000 / pct if pct > 0 else math.inf)
    return any(d.sample_count < needed for d in points)


def decide(spec: Spec, periods: dict[float, Samples], now: float) -> Outcome:
    """The state an evaluation at ``now`` (epoch s) gives, from the samples by period start
    (``Outcome.state`` None: the current state stays, whatever it is).

    Only complete periods count: the newest evaluated period ends at the last multiple of
    ``Period`` at or before ``now`` (AWS's StateReasonData shows the newest datapoint's period
    ending before the query time).
    """
    p = spec.period
    newest_end = math.floor(now / p) * p
    span = evaluation_range(spec)
    starts = [newest_end - p * k for k in range(span, 0, -1)]  # oldest first
    slots: list[Datapoint | None] = []
    for start in starts:
        samples = periods.get(start)
        value = statistic(spec, samples) if samples else None
        slots.append(Datapoint(start, value, float(samples.count)) if samples and value is not None else None)
    test, words = OPERATORS[spec.operator]
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    existing = [d for d in slots if d is not None]
    data = {"version": "1.0", "queryDate": iso(now), "startDate": iso(starts[-n] if len(existing) < n else
                                                                       existing[-n].start)}
    if spec.unit:
        data["unit"] = spec.unit
    if spec.statistic:
        data["statistic"] = spec.statistic
    else:
        data["extendedStatistic"] = spec.extended_statistic
    data.update({"period": p, "recentDatapoints": [], "threshold": spec.threshold})

    evaluated = existing[-n:]
    data["recentDatapoints"] = [d.value for d in evaluated]
    if evaluated:
        data["evaluatedDatapoints"] = [{"timestamp": iso(d.start), "sampleCount": d.sample_count, "value": d.value}
                                       for d in sorted(evaluated, key=lambda d: -d.start)]
    if _low_samples(spec, evaluated):
        return Outcome(None)
    breaching = [d for d in evaluated if test(d.value, spec.threshold)]
    calm = [d for d in evaluated if not test(d.value, spec.threshold)]
    filled = n - len(evaluated)
    treat = spec.treat_missing_data
    if filled and treat in ("breaching", "notBreaching"):
        label = "[Breaching]" if treat == "breaching" else "[NonBreaching]"
        bad = len(breaching) + (filled if treat == "breaching" else 0)
        state = ALARM if bad >= m else OK
        if not evaluated:
            reason = (f"Threshold Crossed: no datapoints were received for {_plural(n, 'period')} and "
                      f"{_plural(n, 'missing datapoint')} {'was' if n == 1 else 'were'} treated as {label}.")
        else:
            reason = _crossed(state, breaching, calm, bad, n, m, words, spec.threshold)
        return Outcome(state, reason, data)
    if filled:  # missing / ignore, fewer than N datapoints
        if not evaluated:
            if treat == "ignore":
                return Outcome(None)
            return Outcome(INSUFFICIENT_DATA, f"Insufficient Data: {_plural(n, 'datapoint')} "
                                              f"{'was' if n == 1 else 'were'} unknown.", data)
        if len(breaching) >= m:
            return Outcome(ALARM, _crossed(ALARM, breaching, calm, len(breaching), n, m, words, spec.threshold), data)
        oldest_age = span - slots.index(evaluated[0])  # periods back from the newest, 1 = newest
        if treat == "missing" and not calm and oldest_age >= m:
            return Outcome(ALARM, _crossed(ALARM, breaching, calm, len(breaching), n, m, words, spec.threshold), data)
        if calm:
            return Outcome(OK, _crossed(OK, breaching, calm, len(breaching), n, m, words, spec.threshold,
                                        good=len(calm)), data)
        if treat == "ignore":
            return Outcome(None)
        unknown = n - len(evaluated)
        return Outcome(INSUFFICIENT_DATA, f"Insufficient Data: {_plural(unknown, 'datapoint')} "
                                          f"{'was' if unknown == 1 else 'were'} unknown.", data)
    state = ALARM if len(breaching) >= m else OK
    return Outcome(state, _crossed(state, breaching, calm, len(breaching), n, m, words, spec.threshold), data)


def _crossed(state: str, breaching: list[Datapoint], calm: list[Datapoint], bad: int, n: int, m: int,
             words: str, threshold: float, good: int | None = None) -> str:
    t = number(threshold)
    if state == ALARM:
        return (f"Threshold Crossed: {bad} out of the last {n} datapoints [{_listing(breaching)}] "
                f"{'was' if bad == 1 else 'were'} {words} the threshold ({t}) "
                f"(minimum {_plural(m, 'datapoint')} for OK -> ALARM transition).")
    good = n - bad if good is None else good
    return (f"Threshold Crossed: {good} out of the last {n} datapoints [{_listing(calm)}] "
            f"{'was' if good == 1 else 'were'} not {words} the threshold ({t}) "
            f"(minimum {_plural(n - m + 1, 'datapoint')} for ALARM -> OK transition).")
