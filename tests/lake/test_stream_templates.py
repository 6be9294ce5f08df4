"""KDG record templates (``lake.stream.templates``): the examples of the KDG's help page render as it
documents them (https://awslabs.github.io/amazon-kinesis-data-generator/web/help.html), moment.js
formats give moment's documented output, and a bad template names its file, line and helper."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from lake.stream.templates import HELPERS, RecordTemplate, TemplateError

#: The help page's JSON example, as it is printed there (multi-line arguments included).
SENSOR = """
{
    "sensorId": {{random.number(50)}},
    "currentTemperature": {{random.number(
        {
            "min":10,
            "max":150
        }
    )}},
    "status": "{{random.arrayElement(
        ["OK","FAIL","WARN"]
    )}}"
}
"""
#: 2010-02-14 15:25:50 UTC: moment.js's documentation formats this moment in its "Display" examples.
MOMENT = datetime(2010, 2, 14, 15, 25, 50, 125000, tzinfo=UTC)


def _template(tmp_path, text: str, **kwargs) -> RecordTemplate:
    path = tmp_path / "record.tmpl"
    path.write_text(text)
    return RecordTemplate(path, **kwargs)


def test_the_help_pages_examples(tmp_path):
    csv = _template(tmp_path, "{{name.firstName}},{{name.lastName}},{{random.number(70)}},{{internet.ip}}", seed=1)
    for _ in range(200):
        first, last, age, ip = csv.render().split(",")
        assert first.isalpha() and last.replace("-", "").replace("'", "").isalpha()
        assert 0 <= int(age) <= 70
        ipaddress.IPv4Address(ip)
    sensor = _template(tmp_path, SENSOR, seed=2)
    records = [sensor.render() for _ in range(500)]
    assert all("\n" not in r for r in records)  # the KDG removes the template's newlines: one record, one line
    docs = [json.loads(r) for r in records]
    assert {d["status"] for d in docs} == {"OK", "FAIL", "WARN"}
    assert min(d["currentTemperature"] for d in docs) >= 10 and max(d["currentTemperature"] for d in docs) <= 150
    assert {d["sensorId"] for d in docs} <= set(range(51)) and len({d["sensorId"] for d in docs}) > 40


def test_weighted_array_element_follows_the_weights(tmp_path):
    t = _template(tmp_path, '{{random.weightedArrayElement({"weights": [0.3,0.2,0.5], "data": ["cat","fish","dog"]})}}',
                  seed=3)
    counts = Counter(t.render() for _ in range(4000))
    for pet, weight in (("cat", 0.3), ("fish", 0.2), ("dog", 0.5)):
        assert abs(counts[pet] / 4000 - weight) < 0.03, counts


def test_dates_format_as_moment_js(tmp_path):
    t = _template(tmp_path, '{{date.utc("dddd, MMMM Do YYYY, h:mm:ss a")}}|{{date.utc("ddd, hA")}}|'
                            '{{date.utc("DD/MMM/YYYY:HH:mm:ss ZZ")}}|{{date.utc("Z")}}|{{date.utc}}|'
                            '{{date.utc("X")}}|{{date.utc("x")}}|{{current.timestamp}}', now=lambda: MOMENT)
    parts = t.render().split("|")
    assert parts[:7] == ["Sunday, February 14th 2010, 3:25:50 pm", "Sun, 3PM", "14/Feb/2010:15:25:50 +0000",
                         "+00:00", "2010-02-14T15:25:50Z", "1266161150", "1266161150125"]
    local = datetime.fromisoformat(parts[7])  # date.now's default: ISO 8601 with the local offset
    assert local == MOMENT.replace(microsecond=0)


def test_faker_helpers_and_seeds(tmp_path):
    text = ('{"email": "{{internet.email}}", "s": "{{lorem.sentence}}", "w": "{{lorem.words(4)}}", '
            '"u": "{{random.uuid}}", "b": {{random.boolean}}, "n": {{null}}, "p": {{random.number({"min": 1, '
            '"max": 2, "precision": 0.01})}}, "city": "{{address.city}}", "co": "{{company.companyName}}", '
            '"amt": "{{finance.amount(5, 10, 2)}}", "lit": "{% not a block %} {# nor a comment #}"}')
    a, b = _template(tmp_path, text, seed=7), _template(tmp_path, text, seed=7)
    records = [a.render() for _ in range(50)]
    assert records == [b.render() for _ in range(50)]  # same seed, same records
    for doc in map(json.loads, records):
        assert re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", doc["email"])
        assert doc["s"].endswith(".") and len(doc["w"].split()) == 4
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", doc["u"])
        assert isinstance(doc["b"], bool) and doc["n"] is None and 1 <= doc["p"] <= 2
        assert round(doc["p"], 2) == doc["p"] and 5 <= float(doc["amt"]) <= 10 and doc["city"] and doc["co"]
        assert doc["lit"] == "{% not a block %} {# nor a comment #}"
    assert "number" in HELPERS["random"] and "now" in HELPERS["date"] and "firstName" in HELPERS["name"]


@pytest.mark.parametrize(("text", "message"), [
    ('{\n  "a": {{random.number(5)}},\n  "b": "{{name.fullName}}"\n}', r"record.tmpl, line 3: unknown helper name.fullName"),
    ('\n\n{"a": {{faker.name}}}', r"record.tmpl, line 3: unknown helper namespace 'faker'"),
    ('{"a": {{random.number(5}}}', r"record.tmpl, line 1: unexpected '}', expected '\)'"),
    ('', r"record.tmpl: the file is empty"),
])
def test_bad_templates_are_refused_at_load(tmp_path, text, message):
    with pytest.raises(TemplateError, match=message):
        _template(tmp_path, text)


def test_bad_arguments_name_the_line_and_helper(tmp_path):
    t = _template(tmp_path, '{"a": {{random.number(5)}},\n\n "b": {{random.number({"min": 5, "max": 1})}}}')
    with pytest.raises(TemplateError, match=r"record.tmpl, line 3: random.number: needs min <= max"):
        t.render()
    t = _template(tmp_path, '{{random.weightedArrayElement({"weights": [1], "data": ["a", "b"]})}}')
    with pytest.raises(TemplateError, match=r"line 1: random.weightedArrayElement: weights \(1\) and data \(2\)"):
        t.render()
