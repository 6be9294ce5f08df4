"""Kinesis Data Generator record templates: ``lake stream send --template FILE``.

The KDG (https://awslabs.github.io/amazon-kinesis-data-generator/web/help.html, "Record Template")
renders one record per template render: text of any shape (JSON, CSV, free text) in which each
``{{ namespace.helper }}`` or ``{{ namespace.helper(arguments) }}`` is replaced by a fresh value of a
faker.js helper, e.g.::

    {"sensorId": {{random.number(50)}},
     "currentTemperature": {{random.number({"min": 10, "max": 150})}},
     "status": "{{random.arrayElement(["OK", "FAIL", "WARN"])}}",
     "seen": "{{date.now("YYYY-MM-DDTHH:mm:ss")}}", "owner": "{{name.firstName}} {{internet.email}}"}

As the KDG does (its ``getCleanedTemplate`` in web/js/producer.js), the template is trimmed and
its newlines are removed, so a record is one line, and ``{{current.timestamp}}`` is ``{{date.now}}``.
Arguments are JSON values (numbers, strings, arrays, objects, ``true``/``false``/``null``).

The engine is Jinja2 (expressions only: ``{% %}`` and ``{# #}`` are plain text here), the values
come from Faker (the Python port's providers, ``en_US``) and a seeded :class:`random.Random`; the
helpers are :data:`HELPERS` (faker.js names, faker.js argument forms):

* ``random``: ``number(max)`` / ``number({"min", "max", "precision"})`` (integers 0..99999 by
  default, both ends included, as faker.js), ``float`` (precision 0.01), ``arrayElement(array)``,
  ``weightedArrayElement({"weights": [...], "data": [...]})`` (the KDG's addition: weights are
  relative), ``uuid``, ``boolean``, ``word``, ``words(count)``, ``alphaNumeric(count)``, ``hexaDecimal(count)``;
* ``date``: ``now`` / ``utc`` with an optional moment.js format (default ISO 8601, ``2014-09-08T08:02:17-05:00``;
  formatting by arrow, whose tokens are moment's: ``Z`` is ``-07:00`` and ``ZZ`` ``-0700`` as in moment,
  ``X``/``x`` Unix seconds/milliseconds), ``past(years)``, ``future(years)``, ``recent(days)``,
  ``between(from, to)`` (ISO 8601 text), ``month``, ``weekday``;
* ``name``: ``firstName``, ``lastName``, ``findName``, ``prefix``, ``suffix``, ``jobTitle``, ``title``;
* ``internet``: ``email``, ``exampleEmail``, ``userName``, ``protocol``, ``url``, ``domainName``,
  ``domainSuffix``, ``domainWord``, ``ip``, ``ipv6``, ``userAgent``, ``color``, ``mac``, ``password(length)``;
* ``lorem``: ``word``, ``words(count)``, ``sentence(wordCount)``, ``sentences(count)``, ``slug``,
  ``paragraph(sentenceCount)``, ``paragraphs(count)``, ``text`` (sentences and paragraphs joined with
  a space, not faker.js's newlines: a record is one line);
* ``address``: ``city``, ``streetAddress``, ``streetName``, ``zipCode``, ``state``, ``stateAbbr``, ``country``,
  ``countryCode``, ``latitude``, ``longitude``; ``phone``: ``phoneNumber``;
* ``commerce``: ``productName``, ``price(min, max, dec)``, ``department``, ``color``, ``product``;
  ``company``: ``companyName``, ``catchPhrase``, ``bs``; ``finance``: ``amount(min, max, dec)``,
  ``account(length)``, ``currencyCode``, ``transactionType``.

Values print as JavaScript would concatenate them: ``true``/``false``, ``null``, numbers as such;
arrays and objects as JSON. :class:`TemplateError` (a ``ValueError``) names the file, the line and
the helper: an unknown namespace or helper is found when the template is loaded, a syntax error
then too, bad arguments at the first render.
"""

from __future__ import annotations

import json
import random
import re
import string
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import arrow
import jinja2
from arrow.formatter import DateTimeFormatter
from faker import Faker
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.lexer import Token


class TemplateError(ValueError):
    """A record template that cannot be rendered: the message names the file, line and helper."""


class _Helpers:
    """The helper functions, bound to one Faker and one :class:`random.Random` (seeded together)."""

    def __init__(self, seed: int | None = None, now: Callable[[], datetime] | None = None):
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed if seed is not None else self.rng.getrandbits(32))
        self.now = now or (lambda: datetime.now(UTC))

    # --- random -------------------------------------------------------------------------------
    def number(self, options: Any = None) -> int | float:
        opts = {"max": options} if isinstance(options, (int, float)) else dict(options or {})
        unknown = set(opts) - {"min", "max", "precision"}
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}; allowed: min, max, precision")
        low, high, precision = opts.get("min", 0), opts.get("max", 99999), opts.get("precision", 1)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high, precision)):
            raise ValueError(f"min, max and precision must be numbers, got {opts}")
        if high < low or precision <= 0:
            raise ValueError(f"needs min <= max and precision > 0, got {opts}")
        steps = int((high - low) / precision + 1e-9)
        value = low + self.rng.randint(0, steps) * precision
        if float(precision).is_integer() and float(low).is_integer():
            return int(value)
        decimals = max(0, -int(f"{precision:e}".split("e")[1]))
        return round(value, decimals)

    def float_(self, options: Any = None) -> float:
        opts = {"max": options} if isinstance(options, (int, float)) else dict(options or {})
        return float(self.number({"precision": 0.01, **opts}))

    def array_element(self, array: Any = ("a", "b", "c")) -> Any:
        if not isinstance(array, (list, tuple)) or not array:
            raise ValueError(f"needs a non-empty array, got {array!r}")
        return self.rng.choice(list(array))

    def weighted_array_element(self, spec: Any = None) -> Any:
        if not isinstance(spec, dict) or set(spec) != {"weights", "data"}:
            raise ValueError('needs {"weights": [...], "data": [...]}')
        weights, data = spec["weights"], spec["data"]
        if not isinstance(data, list) or not data or not isinstance(weights, list) or len(weights) != len(data):
            raise ValueError(f"weights ({len(weights) if isinstance(weights, list) else weights!r}) and data "
                             f"({len(data) if isinstance(data, list) else data!r}) must be arrays of one length")
        if any(not isinstance(w, (int, float)) or w < 0 for w in weights) or not sum(weights):
            raise ValueError(f"weights must be non-negative numbers, not all 0: {weights}")
        return self.rng.choices(data, weights=weights)[0]

    def chars(self, alphabet: str, count: Any) -> str:
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        return "".join(self.rng.choice(alphabet) for _ in range(count))

    def words(self, count: Any = None) -> str:
        n = self.rng.randint(1, 3) if count is None else count
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        return " ".join(self.fake.words(n))

    # --- date ---------------------------------------------------------------------------------
    def moment(self, when: datetime, fmt: Any, utc: bool) -> str:
        moment = arrow.get(when) if utc else arrow.get(when).to("local")
        if fmt is None:
            return moment.format("YYYY-MM-DDTHH:mm:ss") + ("Z" if utc else moment.format("ZZ"))
        if not isinstance(fmt, str):
            raise TypeError(f"the format must be a moment.js format string, got {fmt!r}")
        return moment.format(moment_to_arrow(fmt, moment))

    def offset(self, seconds: float, direction: int) -> str:
        return self.moment(self.now() + direction * timedelta(seconds=self.rng.uniform(0, seconds)), None, True)

    def between(self, start: Any, end: Any) -> str:
        try:
            a, b = arrow.get(start), arrow.get(end)
        except (arrow.parser.ParserError, TypeError) as exc:
            raise ValueError(f"from and to must be ISO 8601 dates: {exc}") from exc
        if b < a:
            raise ValueError(f"to {end!r} is before from {start!r}")
        return self.moment((a + timedelta(seconds=self.rng.uniform(0, (b - a).total_seconds()))).datetime, None, True)

    def sentences(self, count: Any, what: str) -> str:
        n = self.rng.randint(2, 6) if count is None else count
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{what} must be a positive integer, got {count!r}")
        return " ".join(self.fake.sentences(n))

    def money(self, low: Any = 0, high: Any = 1000, dec: Any = 2) -> str:
        if not all(isinstance(v, (int, float)) for v in (low, high)) or not isinstance(dec, int) or high < low:
            raise ValueError(f"needs numbers min <= max and integer decimals, got {low!r}, {high!r}, {dec!r}")
        return f"{self.rng.uniform(low, high):.{dec}f}"


def moment_to_arrow(fmt: str, moment: arrow.Arrow) -> str:
    """A moment.js display format as an arrow format: ``Z`` and ``ZZ`` swap (moment's ``Z`` is
    ``+07:00``, arrow's ``ZZ``), ``X``/``x`` become moment's Unix seconds / milliseconds."""
    def token(match: re.Match) -> str:
        text = match.group(0)
        if text == "Z":
            return "ZZ"
        if text == "ZZ":
            return "Z"
        if text == "X":
            return f"[{int(moment.timestamp())}]"
        if text == "x":
            return f"[{int(moment.timestamp() * 1000)}]"
        return text

    return DateTimeFormatter._FORMAT_RE.sub(token, fmt)


def _helpers(h: _Helpers) -> dict[str, dict[str, Callable[..., Any]]]:
    f = h.fake
    now = lambda fmt=None: h.moment(h.now(), fmt, False)
    return {
        "random": {
            "number": h.number, "float": h.float_, "arrayElement": h.array_element,
            "weightedArrayElement": h.weighted_array_element, "uuid": lambda: str(uuid.UUID(int=h.rng.getrandbits(128),
                                                                                         version=4)),
            "boolean": lambda: h.rng.random() < 0.5, "word": lambda: f.word(), "words": h.words,
            "alphaNumeric": lambda count=1: h.chars(string.ascii_lowercase + string.digits, count),
            "hexaDecimal": lambda count=1: "0x" + h.chars("0123456789abcdef", count),
        },
        "date": {
            "now": now, "utc": lambda fmt=None: h.moment(h.now(), fmt, True),
            "past": lambda years=1: h.offset(years * 365 * 86400, -1),
            "future": lambda years=1: h.offset(years * 365 * 86400, 1),
            "recent": lambda days=1: h.offset(days * 86400, -1),
            "between": h.between, "month": lambda: f.month_name(), "weekday": lambda: f.day_of_week(),
        },
        "current": {"timestamp": now},
        "name": {
            "firstName": lambda: f.first_name(), "lastName": lambda: f.last_name(), "findName": lambda: f.name(),
            "prefix": lambda: f.prefix(), "suffix": lambda: f.suffix(), "jobTitle": lambda: f.job(),
            "title": lambda: f.job(),
        },
        "internet": {
            "email": lambda: f.email(), "exampleEmail": lambda: f.ascii_safe_email(), "userName": lambda: f.user_name(),
            "protocol": lambda: h.rng.choice(["http", "https"]), "url": lambda: f.url(),
            "domainName": lambda: f.domain_name(), "domainSuffix": lambda: f.tld(), "domainWord": lambda: f.domain_word(),
            "ip": lambda: f.ipv4(), "ipv6": lambda: f.ipv6(), "userAgent": lambda: f.user_agent(),
            "color": lambda: f.hex_color(), "mac": lambda: f.mac_address(),
            "password": lambda length=15: h.chars(string.ascii_letters + string.digits, length),
        },
        "lorem": {
            "word": lambda: f.word(), "words": lambda count=3: h.words(count),
            "sentence": lambda wordCount=None: f.sentence(nb_words=wordCount or 6),
            "sentences": lambda count=None: h.sentences(count, "count"), "slug": lambda count=3: f.slug(h.words(count)),
            "paragraph": lambda sentenceCount=3: f.paragraph(nb_sentences=sentenceCount),
            "paragraphs": lambda count=3: " ".join(f.paragraphs(count)), "text": lambda: f.text().replace("\n", " "),
        },
        "address": {
            "city": lambda: f.city(), "streetAddress": lambda: f.street_address(), "streetName": lambda: f.street_name(),
            "zipCode": lambda: f.zipcode(), "state": lambda: f.state(), "stateAbbr": lambda: f.state_abbr(),
            "country": lambda: f.country(), "countryCode": lambda: f.country_code(),
            "latitude": lambda: str(f.latitude()), "longitude": lambda: str(f.longitude()),
        },
        "phone": {"phoneNumber": lambda: f.phone_number()},
        "commerce": {
            "productName": lambda: f"{f.color_name()} {f.word().title()} {h.rng.choice(['Chair', 'Car', 'Shoes', 'Table', 'Hat', 'Gloves'])}",
            "price": lambda low=1, high=1000, dec=2: h.money(low, high, dec),
            "department": lambda: h.rng.choice(["Books", "Movies", "Music", "Games", "Electronics", "Computers", "Home",
                                                "Garden", "Tools", "Grocery", "Health", "Beauty", "Toys", "Kids",
                                                "Baby", "Clothing", "Shoes", "Jewelery", "Sports", "Outdoors",
                                                "Automotive", "Industrial"]),
            "color": lambda: f.color_name().lower(),
            "product": lambda: h.rng.choice(["Chair", "Car", "Computer", "Keyboard", "Mouse", "Bike", "Ball", "Gloves",
                                             "Pants", "Shirt", "Table", "Shoes", "Hat", "Towels", "Soap"]),
        },
        "company": {"companyName": lambda: f.company(), "catchPhrase": lambda: f.catch_phrase(), "bs": lambda: f.bs()},
        "finance": {
            "amount": lambda low=0, high=1000, dec=2: h.money(low, high, dec),
            "account": lambda length=8: h.chars(string.digits, length), "currencyCode": lambda: f.currency_code(),
            "transactionType": lambda: h.rng.choice(["deposit", "withdrawal", "payment", "invoice"]),
        },
    }


#: The helper names per namespace (what a template may use).
HELPERS: dict[str, tuple[str, ...]] = {ns: tuple(sorted(fns)) for ns, fns in _helpers(_Helpers(0)).items()}
#: Names a template may use besides the namespaces: JSON's ``null`` (Jinja has ``true``/``false``/``none``).
_LITERALS = {"null": None}


class _KdgText(Extension):
    """The KDG's template cleaning as a token filter: newlines in the text between expressions are
    removed (line numbers stay those of the file)."""

    def filter_stream(self, stream):
        for token in stream:
            if token.type == "data":
                yield Token(token.lineno, "data", token.value.replace("\r", "").replace("\n", ""))
            else:
                yield token


def _environment() -> jinja2.Environment:
    # Statements and comments get delimiters no template holds: "{%" and "{#" stay text, as in the KDG.
    return jinja2.Environment(
        block_start_string="\x00%", block_end_string="%\x00", comment_start_string="\x00#",
        comment_end_string="#\x00", undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=False, extensions=[_KdgText], finalize=_finalize)


def _finalize(value: Any) -> Any:
    if callable(value):  # {{name.firstName}} without parentheses, as faker.js takes it
        value = value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


class RecordTemplate:
    """A KDG record template loaded from a file; :meth:`render` gives one record (str, one line).

    :param path: the template file (UTF-8).
    :param seed: seeds Faker and the random helpers (same seed, same records; ``date.now`` aside).
    :param now: the clock of the ``date`` helpers (default: the wall clock, UTC-aware).
    :raises TemplateError: the file is missing or empty, has a syntax error, or uses an unknown
        namespace or helper (the message names the file, line and helper).
    """

    def __init__(self, path: str | Path, *, seed: int | None = None, now: Callable[[], datetime] | None = None):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"record template {self.path}: cannot be read: {exc}") from exc
        stripped = text.lstrip()
        self._line_offset = text[: len(text) - len(stripped)].count("\n")
        source = stripped.rstrip()
        if not source:
            raise TemplateError(f"record template {self.path}: the file is empty")
        env = _environment()
        try:
            tree = env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"record template {self.path}, line {self._line(exc.lineno)}: "
                                f"{exc.message}") from exc
        self._check(tree)
        code = env.compile(source, name=self.path.name, filename=str(self.path))
        self._template = env.template_class.from_code(env, code, env.make_globals(None))
        helpers = _helpers(_Helpers(seed, now))
        self._context = {ns: _Namespace(ns, fns) for ns, fns in helpers.items()} | _LITERALS

    def _line(self, lineno: int | None) -> int:
        return (lineno or 1) + self._line_offset

    def _check(self, tree: nodes.Template) -> None:
        for node in tree.find_all(nodes.Name):
            if node.name not in HELPERS and node.name not in _LITERALS:
                raise TemplateError(f"record template {self.path}, line {self._line(node.lineno)}: unknown helper "
                                    f"namespace {node.name!r}; namespaces: {', '.join(sorted(HELPERS))}")
        for node in tree.find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name in HELPERS:
                namespace = node.node.name
                if node.attr not in HELPERS[namespace]:
                    raise TemplateError(f"record template {self.path}, line {self._line(node.lineno)}: unknown helper "
                                        f"{namespace}.{node.attr}; {namespace} has {', '.join(HELPERS[namespace])}")

    def render(self) -> str:
        """One record: the template with every helper replaced by a new value.

        :raises TemplateError: a helper's arguments are wrong (names the file, line and helper).
        """
        try:
            return self._template.render(self._context)
        except Exception as exc:  # noqa: BLE001 - any failure inside a helper is the template's
            line = None
            for frame in traceback.extract_tb(exc.__traceback__):
                if frame.filename == str(self.path):
                    line = frame.lineno
            helper = getattr(exc, "kdg_helper", "?")
            where = f", line {self._line(line)}" if line else ""
            raise TemplateError(f"record template {self.path}{where}: {helper}: {exc}") from None


class _Namespace:
    """One helper namespace (``random``, ``name`` ...): attribute access gives the helper; a call's
    errors carry the helper's name for :meth:`RecordTemplate.render`."""

    def __init__(self, name: str, functions: dict[str, Callable[..., Any]]):
        self._name = name
        for helper, fn in functions.items():
            setattr(self, helper, _named(f"{name}.{helper}", fn))


def _named(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            exc.kdg_helper = name  # type: ignore[attr-defined]
            raise

    call.__name__ = name
    return call
