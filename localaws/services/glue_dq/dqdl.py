"""DQDL, AWS Glue Data Quality's rule language: a parser (pyparsing) into :class:`Rule` trees.

The grammar is written from AWS's public DQDL reference
(<https://docs.aws.amazon.com/glue/latest/dg/dqdl.html>), not from AWS's own grammar files::

    ruleset    := "Rules" "=" "[" [ item ("," item)* ] "]"
    item       := composite | rule
    composite  := group ( ("and" | "or") group )+      one operator per level; nest to mix them
    group      := "(" ( composite | rule ) ")"
    rule       := RuleType param* [ expression ] [ "with" "threshold" expression ] [ "where" STRING ]
    param      := STRING                                "col", "select count(*) from primary"
    expression := ("=" | "!=" | ">" | ">=" | "<" | "<=") value
                | ["not"] "between" value "and" value
                | ["not"] "in" "[" value ("," value)* "]"
                | ["not"] "matches" STRING
    value      := duration | date | NUMBER | STRING | NULL | EMPTY | WHITESPACES_ONLY
    date       := "now()" | "(" "now()" ("-" | "+") duration ")"     a date literal is a STRING "2024-01-31"
    duration   := INTEGER ("days" | "hours")

The document is case sensitive, as AWS says (``Rules``, rule type names, ``and``/``or``).
``RuleType`` must be one of AWS's rule types (:data:`AWS_RULE_TYPES`): an unknown name is a
parse error; the types localaws evaluates check their parameters here too
(:data:`SIGNATURES`), so a ruleset is refused at CreateDataQualityRuleset rather than at a run.
The date and duration forms are those of AWS's DQDL grammar (awslabs/dqdl,
``configuration/dqdl/DataQualityDefinitionLanguage.g4``: ``dateExpression``, ``timeExpression``
with ``timeUnit: 'days' | 'hours'``). Dates apply to ColumnValues (``ColumnValues "Load_Date" >
(now() - 3 days)``, AWS's ColumnValues page) and durations to DataFreshness (``DataFreshness
"Order_Date" <= 24 hours``, AWS's DataFreshness page); both are also accepted by FileFreshness,
which localaws does not evaluate.

A construct AWS documents that this grammar lacks (dynamic rules ``last(10)`` / ``avg(...)``,
other time units, the ``Metadata`` / ``DataSources`` / ``Analyzers`` sections, ...) is refused
with ``localaws does not support <construct> in DQDL``, never with a bare syntax error
(:data:`UNSUPPORTED`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyparsing as pp

#: The rule types of AWS's DQDL reference ("DQDL rule type reference").
AWS_RULE_TYPES = frozenset({
    "AggregateMatch", "ColumnCorrelation", "ColumnCount", "ColumnDataType", "ColumnExists", "ColumnLength",
    "ColumnNamesMatchPattern", "ColumnValues", "Completeness", "CustomSql", "DataFreshness", "DatasetMatch",
    "DistinctValuesCount", "Entropy", "IsComplete", "IsPrimaryKey", "IsUnique", "Mean", "ReferentialIntegrity",
    "RowCount", "RowCountMatch", "StandardDeviation", "Sum", "SchemaMatch", "Uniqueness", "UniqueValueRatio",
    "DetectAnomalies", "FileFreshness", "FileMatch", "FileUniqueness", "FileSize",
})

#: Rule types localaws evaluates: (minimum params, maximum params or None, expression "required"/"none").
SIGNATURES: dict[str, tuple[int, int | None, str]] = {
    "RowCount": (0, 0, "required"),
    "IsComplete": (1, 1, "none"),
    "Completeness": (1, 1, "required"),
    "IsUnique": (1, 1, "none"),
    "Uniqueness": (1, None, "required"),
    "IsPrimaryKey": (1, None, "none"),
    "ColumnValues": (1, 1, "required"),
    "ColumnLength": (1, 1, "required"),
    "ColumnExists": (1, 1, "none"),
    "DistinctValuesCount": (1, 1, "required"),
    "Mean": (1, 1, "required"),
    "Sum": (1, 1, "required"),
    "StandardDeviation": (1, 1, "required"),
    "CustomSql": (1, 1, "required"),
    "ReferentialIntegrity": (2, 2, "required"),
}
SIGNATURES["DataFreshness"] = (1, 1, "required")
#: Rule types whose expression applies to each row, so ``with threshold`` may follow it.
ROW_LEVEL = frozenset({"ColumnValues", "ColumnLength", "DataFreshness"})
#: Rule types that take dates (``now()``, ``(now() - 3 days)``) and durations (``24 hours``).
DATE_RULES = frozenset({"ColumnValues", "FileFreshness"})
DURATION_RULES = frozenset({"DataFreshness", "FileFreshness"})

#: What localaws's grammar lacks, found outside quoted strings when a ruleset does not parse:
#: (regex, what the message names). The first that matches names the construct.
UNSUPPORTED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^\s*(Metadata|DataSources|Sources|Analyzers)\s*=", re.MULTILINE), "the {0} section"),
    (re.compile(r"\b(last|avg|min|max|sum|std|stddev|abs|index)\s*\("),
     "dynamic rules ({0}(...); AWS runs them only in Glue ETL jobs)"),
    (re.compile(r"\d+\s*(minutes?|seconds?|weeks?|months?|years?|day|hour)\b"),
     "the time unit '{0}' (DQDL durations are N days or N hours)"),
    (re.compile(r"\bnow\(\)\s*[-+*/]"), "date arithmetic outside parentheses (write it '(now() - 3 days)')"),
    (re.compile(r"(?<![\w\"])(\d{4}-\d{2}-\d{2})(?![\w\"])"),
     "the unquoted date {0} (write a date literal in quotes: \"2024-01-31\")"),
    (re.compile(r"(\btoday\(\)|\bcurrent_date\b|\bdate\s*\()"), "the date function {0} (DQDL has now() only)"),
    (re.compile(r"\bwith\s+threshold\s+(?:[<>=!]+|between|in)\s*\(?\s*now\(\)"),
     "a date in 'with threshold' (a threshold is a fraction of rows)"),
    (re.compile(r"\bwith\s+(?!threshold\b)(\"\s*\"|\w+)"), "the rule option 'with {0}'"),
]


class DQDLError(ValueError):
    """An invalid ruleset; the message names the line and column (1-based) and what was wrong."""


class Keyword(str):
    """``NULL``, ``EMPTY`` or ``WHITESPACES_ONLY`` in a value list."""


@dataclass(frozen=True)
class Duration:
    """``N days`` or ``N hours``; :attr:`hours` is its length in hours."""

    amount: int
    unit: str

    @property
    def hours(self) -> float:
        return float(self.amount * 24 if self.unit == "days" else self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


@dataclass(frozen=True)
class Now:
    """``now()`` (``offset`` None) or ``(now() - 3 days)`` (``sign`` -1 or +1, ``offset`` the duration)."""

    sign: int = 0
    offset: Duration | None = None

    @property
    def hours(self) -> float:
        """Hours to add to the time of the run (negative for ``now() - ...``)."""
        return self.sign * self.offset.hours if self.offset else 0.0

    def __str__(self) -> str:
        return "now()" if self.offset is None else f"(now() {'-' if self.sign < 0 else '+'} {self.offset})"


@dataclass(frozen=True)
class Expression:
    """``op`` is one of ``= != > >= < <= between in matches``; ``negated`` for ``not ...``;
    ``values``: the operands (float for numbers, str for strings, :class:`Keyword`)."""

    op: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass
class Rule:
    """One rule, or a composite (``rule_type`` ``"and"``/``"or"`` with ``children``); ``text`` is its DQDL."""

    rule_type: str
    text: str
    params: list[str] = field(default_factory=list)
    expression: Expression | None = None
    threshold: Expression | None = None
    where: str | None = None
    children: list[Rule] = field(default_factory=list)

    @property
    def composite(self) -> bool:
        return self.rule_type in ("and", "or")


def _grammar() -> pp.ParserElement:
    string = pp.QuotedString('"', esc_char="\\", unquote_results=True)
    number = pp.pyparsing_common.fnumber.copy()
    keyword = pp.one_of("NULL EMPTY WHITESPACES_ONLY", as_keyword=True).set_parse_action(lambda t: Keyword(t[0]))
    lbr, rbr, lpar, rpar = map(pp.Suppress, "[]()")
    unit = pp.one_of("days hours", as_keyword=True)
    duration = (pp.Regex(r"\d+") + unit).set_parse_action(lambda t: Duration(int(t[0]), t[1])).set_name("duration")
    now_ = pp.Suppress(pp.Literal("now()"))
    date = (now_.copy().set_parse_action(lambda: Now())
            | (lpar + now_ + pp.one_of("- +") + duration + rpar).set_parse_action(
                lambda t: Now(-1 if t[0] == "-" else 1, t[1]))).set_name("date")
    value = (duration | date | number | string.copy().set_parse_action(lambda t: str(t[0]))
             | keyword).set_name("value")
    cmp = pp.one_of("!= >= <= = > <")("op") + value("v1")
    not_ = pp.Optional(pp.Keyword("not"))("neg")
    between = not_ + pp.Keyword("between")("op") + value("v1") + pp.Keyword("and") + value("v2")
    in_ = not_ + pp.Keyword("in")("op") + pp.Group(lbr + pp.DelimitedList(value) + rbr)("vlist")
    matches = not_ + pp.Keyword("matches")("op") + string("v1")
    expression = pp.Group(cmp | between | in_ | matches).set_name("expression")
    rule_type = pp.Regex(r"[A-Z][A-Za-z]*").set_name("rule type")
    simple = pp.Group(
        rule_type("type") + pp.Group(pp.ZeroOrMore(string))("params") + pp.Optional(expression("expr"))
        + pp.Optional(pp.Suppress(pp.Keyword("with") + pp.Keyword("threshold")) + expression("threshold"))
        + pp.Optional(pp.Suppress(pp.Keyword("where")) + string("where"))
    ).set_name("rule")
    item = pp.Forward()
    group = lpar + item + rpar
    composite = pp.Group(group + pp.OneOrMore(pp.one_of("and or", as_keyword=True) + group))("composite")
    item <<= pp.Located(composite | simple)
    return (pp.Keyword("Rules") + pp.Suppress("=") + lbr + pp.Optional(pp.DelimitedList(item)) + rbr
            + pp.StringEnd())


_GRAMMAR = _grammar()


def _position(text: str, loc: int) -> str:
    return f"line {pp.lineno(loc, text)}, column {pp.col(loc, text)}"


def _one(token: Any) -> Any:
    """A named value whose parse action built one object comes back wrapped in ParseResults."""
    return token[0] if isinstance(token, pp.ParseResults) else token


def _expression(tokens: pp.ParseResults) -> Expression:
    op = tokens["op"]
    if op == "between":
        values: tuple[Any, ...] = (_one(tokens["v1"]), _one(tokens["v2"]))
    elif op == "in":
        values = tuple(_one(v) for v in tokens["vlist"])
    else:
        values = (_one(tokens["v1"]),)
    return Expression(op, values, negated=bool(tokens.get("neg")))


def _triples(items: pp.ParseResults) -> list[tuple[int, pp.ParseResults, int]]:
    """``Located`` items come flattened as start, tokens, end."""
    return [(items[i], items[i + 1], items[i + 2]) for i in range(0, len(items), 3)]


def _build(start: int, body: pp.ParseResults, end: int, text: str) -> Rule:
    snippet = text[start:end].strip()
    inner = body[0]
    if not isinstance(inner[0], str):  # a composite: start, group, end, op, start, group, end, ...
        parts = [inner[i:i + 3] for i in range(0, len(inner), 4)]
        ops = {inner[i] for i in range(3, len(inner), 4)}
        if len(ops) > 1:
            raise DQDLError(f"{_position(text, start)}: 'and' and 'or' cannot be mixed at one level; "
                            f"put parentheses around one of them: {snippet}")
        return Rule(ops.pop(), snippet, children=[_build(a, b, c, text) for a, b, c in parts])
    rule = Rule(inner["type"], snippet, params=[str(p) for p in inner["params"]],
                expression=_expression(inner["expr"]) if "expr" in inner else None,
                threshold=_expression(inner["threshold"]) if "threshold" in inner else None,
                where=inner.get("where"))
    _check(rule, text, start)
    return rule


def _check(rule: Rule, text: str, loc: int) -> None:
    where = _position(text, loc)
    if rule.rule_type not in AWS_RULE_TYPES:
        raise DQDLError(f"{where}: unknown rule type {rule.rule_type!r}")
    signature = SIGNATURES.get(rule.rule_type)
    if signature is None:
        return  # an AWS rule type localaws does not evaluate: accepted, reported at evaluation
    low, high, expression = signature
    n = len(rule.params)
    if n < low or (high is not None and n > high):
        wanted = str(low) if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise DQDLError(f"{where}: {rule.rule_type} takes {wanted} quoted parameter(s), got {n}: {rule.text}")
    if expression == "required" and rule.expression is None:
        raise DQDLError(f"{where}: {rule.rule_type} needs an expression (such as '> 0.9'): {rule.text}")
    if expression == "none" and rule.expression is not None:
        raise DQDLError(f"{where}: {rule.rule_type} takes no expression: {rule.text}")
    if rule.threshold is not None and rule.rule_type not in ROW_LEVEL:
        raise DQDLError(f"{where}: {rule.rule_type} does not take 'with threshold': {rule.text}")
    for expr in (rule.expression, rule.threshold):
        if expr is not None and expr.op == "matches" and rule.rule_type != "ColumnValues":
            raise DQDLError(f"{where}: 'matches' applies to ColumnValues only: {rule.text}")
    _check_dates(rule, where)


def _check_dates(rule: Rule, where: str) -> None:
    """Dates only in ColumnValues, durations only in DataFreshness; DataFreshness takes nothing else."""
    values = rule.expression.values if rule.expression else ()
    if rule.threshold and any(isinstance(v, Now | Duration) for v in rule.threshold.values):
        raise DQDLError(f"{where}: localaws does not support a date or duration in 'with threshold' in DQDL "
                        f"(a threshold is a fraction of rows): {rule.text}")
    if any(isinstance(v, Now) for v in values) and rule.rule_type not in DATE_RULES:
        raise DQDLError(f"{where}: now() applies to ColumnValues only (AWS's DQDL reference), not to "
                        f"{rule.rule_type}: {rule.text}")
    if rule.rule_type == "DataFreshness":
        if rule.expression.op not in ("=", ">", ">=", "<", "<=", "between") or rule.expression.negated or not all(
                isinstance(v, Duration) for v in values):
            raise DQDLError(f"{where}: DataFreshness takes a comparison with a duration in hours or days, such as "
                            f"'<= 24 hours' or 'between 2 days and 5 days': {rule.text}")
    elif any(isinstance(v, Duration) for v in values) and rule.rule_type not in DURATION_RULES:
        raise DQDLError(f"{where}: a duration ('{next(v for v in values if isinstance(v, Duration))}') applies to "
                        f"DataFreshness only; to compare a date column write ColumnValues \"col\" > "
                        f"(now() - 3 days): {rule.text}")


def _refuse_unsupported(text: str) -> None:
    """Raise a :class:`DQDLError` naming the first :data:`UNSUPPORTED` construct in ``text`` (strings blanked)."""
    blanked = re.sub(r'"(?:\\.|[^"\\])*"', lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)
    for pattern, what in UNSUPPORTED:
        match = pattern.search(blanked)
        if match:
            name = text[match.start(1):match.end(1)] if match.groups() else match.group()
            line = text.splitlines()[pp.lineno(match.start(), text) - 1].strip()
            raise DQDLError(f"{_position(text, match.start())}: localaws does not support {what.format(name)} "
                            f"in DQDL: {line}")


def parse(text: str) -> list[Rule]:
    """The rules of DQDL document ``text``, in order.

    :raises DQDLError: a syntax error (``line L, column C: Expected ...``), an unknown rule type, or
        parameters / expressions a rule type localaws evaluates does not take.
    """
    try:
        parsed = _GRAMMAR.parse_string(text, parse_all=True)
    except pp.ParseException as exc:
        _refuse_unsupported(text)
        found = text[exc.loc:exc.loc + 20].split("\n", 1)[0] or "end of text"
        raise DQDLError(f"line {exc.lineno}, column {exc.column}: invalid DQDL near {found!r} "
                        f"({exc.msg})") from None
    rules = [_build(a, b, c, text) for a, b, c in _triples(parsed[1:])]
    if not rules:
        raise DQDLError("line 1, column 1: the ruleset has no rules")
    return rules
