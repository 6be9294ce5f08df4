"""Where a dataset's data lives: every physical name (bucket, prefix, key, table, job), in one place.

:class:`Layout` is built from the :class:`~lake.settings.Settings` (buckets, prefixes,
databases, job and crawler names: the ``LAKE_*`` variables) and the dataset's
:class:`~lake.contracts.Contract` (bronze key templates, silver table, partition key, gold
tables). Everything that names an object or a table asks it: the DAG (sensor keys, the Lambda
payload, the Glue arguments, the crawlers, Athena), ``lake.assets``, ``lake.deploy.provision``, the IAM
rendering in ``lake.deploy.iam``, the benches and the CLI. Nothing else derives a name. It is pure: no
I/O, no clock.

The names for ``flights`` with the default settings (day 2013-01-05)::

    bronze key        s3://lake-bronze/flights/ingest_date=2013-01-05/flights_20130105.csv.zip
    manifest key      s3://lake-bronze/flights/ingest_date=2013-01-05/flights_20130105.manifest.json
    silver            s3://lake-silver/flights/dt=2013-01-05/
    quarantine        s3://lake-silver/quarantine/flights/dt=2013-01-05/
    reference         s3://lake-silver/reference/<dimension>/<dimension>.parquet
    gold tables       s3://lake-gold/flights/, s3://lake-gold/carrier_daily/ (contract gold.tables)
    catalog           lake_silver.flights; lake_gold.flights, lake_gold.carrier_daily
    DQ rulesets       lake_gold-flights-dq, lake_gold-carrier_daily-dq (Glue Data Quality)
    lease             s3://lake-artifacts/leases/lake-flights-gold/dt=2013-01-05.json
    Glue script       s3://lake-artifacts/glue/flights_gold.py
    Athena results    s3://lake-artifacts/athena-results/
    delivery rules    flights/ingest_date=<date>/flights_<yyyymmdd>.csv.zip -> (flights, dt=<date>), and the manifest
    dashboard cache   s3://lake-artifacts/dashboards/<dashboard>/<dataset>/dt=2013-01-05/data.parquet

The delivery registry (the ``lake-registry`` Lambda, table ``lake_deliveries``) is told which
dataset and partition an object belongs to by *delivery rules* (:meth:`Layout.delivery_rules`,
:func:`firehose_delivery_rule`): each a bucket, the key's static prefix, a regular expression over
the decoded key built from the same templates that name the objects, and a partition template
over the expression's groups. The registry applies them; it derives no name itself.

A stream dataset (``kind: stream``, e.g. ``flight_events``) arrives through Kinesis Data Firehose
into the bronze bucket, dynamically partitioned by its contract's ``stream.partition_keys``::

    delivery stream   lake-flight-events
    Firehose Prefix   flight_events/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/
    error prefix      quarantine/flight_events/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/
    query             {dt: .event_time[0:10], hour: .event_time[11:13]}  (MetadataExtractionQuery, jq)
    an hour's objects s3://lake-bronze/flight_events/dt=2013-06-01/hour=10/
    gold tables       s3://lake-gold/flight_events/, s3://lake-gold/departures_hourly/ (dt=.../hour=.../)
    run records       s3://lake-artifacts/stream-runs/flight_events/dt=2013-06-01/hour=10/run.json
    Glue job, crawler lake-flight_events-gold, lake-flight_events-gold-crawler (Settings.names_for)

The silver folder is the contract's ``silver.table`` (default its name) under ``LAKE_SILVER_PREFIX``
(default none); the partition folder is ``<partition_key.name>=<day>``. Day methods take a
``date`` or ``YYYY-MM-DD``; the ``*_template`` properties give the same names with the Jinja
forms ``{{ ds }}`` / ``{{ ds_nodash }}`` that Airflow renders for a run.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lake.contracts import Contract
from lake.settings import Settings

#: Airflow's Jinja forms of the run's day: ``YYYY-MM-DD`` and ``YYYYMMDD``.
DS, DS_NODASH = "{{ ds }}", "{{ ds_nodash }}"


#: The delivery registry table's global secondary indexes (``lake.deploy.provision.registry_table_definition``):
#: by dataset and partition, and by dataset and S3 event time.
REGISTRY_PARTITION_INDEX = "by_partition"
REGISTRY_TIME_INDEX = "by_event_time"


def _day(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(str(day))


def s3_uri(bucket: str, key: str = "") -> str:
    """``("bucket", "key")`` -> ``s3://bucket/key`` (the inverse of :func:`split_uri`)."""
    return f"s3://{bucket}/{key}"


_uri = s3_uri


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``. :raises ValueError: when not an ``s3://`` URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def reference_key(reference_prefix: str, dimension: str) -> str:
    """Object key of a dimension's reference table: ``<reference_prefix>/<name>/<name>.parquet``
    (one Parquet object per dimension; the Glue job and the DDL read the folder)."""
    return f"{reference_prefix.strip('/')}/{dimension}/{dimension}.parquet"


def reference_location(reference_root: str, dimension: str) -> str:
    """A dimension table's folder under the reference root URI: ``<root>/<name>/`` (its DDL
    ``LOCATION``; the folder of :func:`reference_key`)."""
    return f"{reference_root.rstrip('/')}/{dimension}/"


# --- delivery rules (the registry's key -> dataset, partition) -----------------------------------

_DAY_GROUPS = {"date": r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})", "yyyymmdd": r"(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"}
_DAY_REPEAT = {"date": "(?P=Y)-(?P=m)-(?P=d)", "yyyymmdd": "(?P=Y)(?P=m)(?P=d)"}


def day_key_pattern(template: str) -> str:
    """A regular expression matching exactly the keys ``template`` names (the contract's
    ``{date}`` / ``{yyyymmdd}`` placeholders, :meth:`lake.contracts.Contract.source_key`), with the
    day in the groups ``Y``, ``m``, ``d``; a second placeholder must name the same day.

    >>> re.fullmatch(day_key_pattern("f/ingest_date={date}/f_{yyyymmdd}.zip"), "f/ingest_date=2013-01-05/f_20130105.zip")["d"]
    '05'

    :raises ValueError: for a placeholder other than ``date`` and ``yyyymmdd``, or none at all.
    """
    out, seen = [], False
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if name is None:
            continue
        if name not in _DAY_GROUPS:
            raise ValueError(f"key template {template!r}: unknown placeholder {{{name}}} (known: date, yyyymmdd)")
        out.append(_DAY_REPEAT[name] if seen else _DAY_GROUPS[name])
        seen = True
    if not seen:
        raise ValueError(f"key template {template!r} names no day ({{date}} or {{yyyymmdd}})")
    return "".join(out)


_FIREHOSE_EXPRESSION = re.compile(r"!\{([^:}]*):([^}]*)\}")
_TIMESTAMP_LETTERS = re.compile(r"([A-Za-z])\1*")


def _timestamp_pattern(fmt: str) -> str:
    """A regular expression for a Java DateTimeFormatter pattern of digits (``yyyy``, ``MM``, ``dd``,
    ``HH``, ``mm``, ``ss``); other characters literal."""
    out, pos = [], 0
    for m in _TIMESTAMP_LETTERS.finditer(fmt):
        out.append(re.escape(fmt[pos:m.start()]))
        out.append(rf"\d{{{len(m.group(0))}}}" if m.group(1) in "yMdHms" else r"[^/]+")
        pos = m.end()
    out.append(re.escape(fmt[pos:]))
    return "".join(out)


def firehose_delivery_rule(dataset: str, bucket: str, prefix: str, *, dynamic_partitioning: bool) -> dict[str, str]:
    """The delivery rule of the objects a Firehose stream writes with ``prefix`` into ``bucket``.

    Firehose's key is ``<evaluated prefix><stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>[.gz]`` (Amazon
    Data Firehose Developer Guide, "Understand custom prefixes for Amazon S3 objects" and "Configure
    Amazon S3 object name format"): ``!{partitionKeyFromQuery:k}`` / ``!{partitionKeyFromLambda:k}``
    become the group ``k``, ``!{timestamp:fmt}`` the group ``ts<i>``, ``!{firehose:...}`` any text
    without ``/``; a prefix with no ``timestamp`` expression and no dynamic partitioning gets
    ``yyyy/MM/dd/HH/`` appended, as Firehose does. The partition is the evaluated prefix after its
    static folder, without the trailing ``/`` (``dt=2013-06-01/hour=14`` for
    ``flight_events/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/``).

    :returns: ``{"dataset", "bucket", "prefix" (static part), "pattern" (regex over the decoded
        key), "partition" (``str.format`` template over the pattern's groups)}``.
    """
    if not dynamic_partitioning and not any(ns == "timestamp" for ns, _ in _FIREHOSE_EXPRESSION.findall(prefix)):
        prefix = prefix + "!{timestamp:yyyy/MM/dd/HH/}"
    static = prefix.split("!{", 1)[0]
    root = static.rsplit("/", 1)[0] + "/" if "/" in static else ""
    pattern, partition, pos, n = [re.escape(root)], [], len(root), 0
    for m in _FIREHOSE_EXPRESSION.finditer(prefix, len(root)):
        literal = prefix[pos:m.start()]
        pattern.append(re.escape(literal))
        partition.append(literal.replace("{", "{{").replace("}", "}}"))
        namespace, value = m.groups()
        if namespace in ("partitionKeyFromQuery", "partitionKeyFromLambda"):
            group, regex = value, "[^/]+"
        elif namespace == "timestamp":
            group, regex, n = f"ts{n}", _timestamp_pattern(value), n + 1
        else:  # firehose:random-string, firehose:error-output-type
            group, regex = None, "[^/]*"
        pattern.append(f"(?P<{group}>{regex})" if group else regex)
        partition.append(f"{{{group}}}" if group else m.group(0))
        pos = m.end()
    pattern.append(re.escape(prefix[pos:]))
    partition.append(prefix[pos:])
    pattern.append("[^/]+")
    return {"dataset": dataset, "bucket": bucket, "prefix": root, "pattern": "".join(pattern),
            "partition": "".join(partition).rstrip("/")}


@dataclass(frozen=True)
class Layout:
    """The physical names of one dataset (see the module docstring for the flights names)."""

    settings: Settings
    contract: Contract

    # --- jobs, crawlers, artefacts ---------------------------------------------------------------

    @property
    def dataset(self) -> str:
        """The dataset's name (the contract's)."""
        return self.contract.name

    @property
    def daily_dag_id(self) -> str:
        """The dataset's daily DAG: ``<dataset>_lake_daily`` (dags/lake_daily.py)."""
        return f"{self.dataset}_lake_daily"

    @property
    def glue_job(self) -> str:
        """The dataset's gold Glue job (``LAKE_GLUE_JOB`` for ``LAKE_DATASET``; see
        :meth:`lake.settings.Settings.names_for`)."""
        return self.settings.names_for(self.dataset)["glue_job"]

    @property
    def silver_crawler(self) -> str:
        """The crawler of the silver fact table (``LAKE_SILVER_CRAWLER`` for ``LAKE_DATASET``)."""
        return self.settings.names_for(self.dataset)["silver_crawler"]

    @property
    def gold_crawler(self) -> str:
        """The crawler of the gold tables (``LAKE_GOLD_CRAWLER`` for ``LAKE_DATASET``)."""
        return self.settings.names_for(self.dataset)["gold_crawler"]

    @property
    def glue_script_name(self) -> str:
        """File name of the dataset's Glue script: ``<dataset>_gold.py`` (in ``include/glue_scripts``)."""
        return f"{self.dataset}_gold.py"

    @property
    def glue_script_location(self) -> str:
        """The Glue script's S3 location: ``s3://<artifacts>/glue/<dataset>_gold.py``."""
        return _uri(self.settings.artifacts_bucket, f"glue/{self.glue_script_name}")

    @property
    def athena_output(self) -> str:
        """Where Athena writes query results: ``s3://<artifacts>/athena-results/``."""
        return _uri(self.settings.artifacts_bucket, "athena-results/")

    # --- the dashboards' cache (lake.dashboards.cache) -------------------------------------------

    @property
    def dashboards_root(self) -> str:
        """Where the dashboards' cached Parquet lives: ``s3://<artifacts>/<LAKE_DASHBOARDS_PREFIX>/``."""
        return _uri(self.settings.artifacts_bucket, f"{self.settings.dashboards_prefix.strip('/')}/")

    def dashboard_prefix(self, dashboard: str, dataset: str) -> str:
        """Key prefix of one dashboard dataset's cache, e.g. ``dashboards/flights/flights/``."""
        return f"{split_uri(self.dashboards_root)[1]}{dashboard}/{dataset}/"

    def dashboard_key(self, dashboard: str, dataset: str, day: date | str) -> str:
        """Key of one day's cached rows (one Parquet object per partition), e.g.
        ``dashboards/flights/flights/dt=2013-01-05/data.parquet``."""
        return f"{self.dashboard_prefix(dashboard, dataset)}{self.partition(_day(day))}/data.parquet"

    # --- bronze -----------------------------------------------------------------------------------

    @property
    def bronze_bucket(self) -> str:
        """The bronze bucket (``LAKE_BRONZE_BUCKET``)."""
        return self.settings.bronze_bucket

    @property
    def bronze_root(self) -> str:
        """The dataset's bronze folder: the contract's ``source.prefix`` up to its first
        placeholder's folder, e.g. ``s3://lake-bronze/flights/``."""
        static = self.contract.source.prefix.split("{", 1)[0]
        folder = static.rsplit("/", 1)[0] + "/" if "/" in static else ""
        return _uri(self.bronze_bucket, folder)

    def bronze_key(self, day: date | str) -> str:
        """Key of ``day``'s zip, e.g. ``flights/ingest_date=2013-01-05/flights_20130105.csv.zip``."""
        return self.contract.source_key(_day(day))

    def manifest_key(self, day: date | str) -> str:
        """Key of ``day``'s manifest. :raises ContractError: when the source has none."""
        return self.contract.manifest_key(_day(day))

    @property
    def bronze_key_template(self) -> str:
        """:meth:`bronze_key` with ``{{ ds }}``/``{{ ds_nodash }}`` (an S3 sensor's ``bucket_key``)."""
        return self.contract.day_keys(DS, DS_NODASH)[0]

    @property
    def manifest_key_template(self) -> str:
        """:meth:`manifest_key` with ``{{ ds }}``/``{{ ds_nodash }}``."""
        return self.contract.day_keys(DS, DS_NODASH)[1]

    # --- partitions, silver, quarantine ----------------------------------------------------------

    @property
    def partition_name(self) -> str:
        """The Hive partition column of silver and gold (the contract's ``partition_key.name``)."""
        return self.contract.partition_name

    def partition(self, value: date | str) -> str:
        """The partition folder name of a day, e.g. ``dt=2013-01-05`` (a ``str`` is used as is,
        so ``partition(DS)`` is the Jinja form)."""
        text = value.isoformat() if isinstance(value, date) else str(value)
        return f"{self.partition_name}={text}"

    @property
    def silver_bucket(self) -> str:
        """The silver bucket (``LAKE_SILVER_BUCKET``): silver, quarantine and reference tables."""
        return self.settings.silver_bucket

    @property
    def silver_table(self) -> str:
        """The silver table's name and folder (the contract's ``silver.table``)."""
        return self.contract.table

    @property
    def silver_root(self) -> str:
        """The silver table's root, e.g. ``s3://lake-silver/flights/`` (the silver crawler's target)."""
        return _uri(self.silver_bucket, self.contract.table_path(self.settings.silver_prefix))

    def silver_prefix(self, day: date | str) -> str:
        """Key prefix of ``day``'s silver partition, e.g. ``flights/dt=2013-01-05/``."""
        return self.contract.partition_prefix(_day(day), self.settings.silver_prefix)

    def silver_path(self, day: date | str) -> str:
        """``day``'s silver partition as a URI, e.g. ``s3://lake-silver/flights/dt=2013-01-05/``."""
        return _uri(self.silver_bucket, self.silver_prefix(day))

    @property
    def quarantine_bucket(self) -> str:
        """The bucket of rejected rows (the silver bucket)."""
        return self.settings.silver_bucket

    @property
    def quarantine_root(self) -> str:
        """The dataset's quarantine root, e.g. ``s3://lake-silver/quarantine/flights/``."""
        return _uri(self.quarantine_bucket, self.contract.table_path(self.settings.quarantine_prefix))

    def quarantine_prefix(self, day: date | str) -> str:
        """Key prefix of ``day``'s rejected rows, e.g. ``quarantine/flights/dt=2013-01-05/``."""
        return self.contract.partition_prefix(_day(day), self.settings.quarantine_prefix)

    def quarantine_path(self, day: date | str) -> str:
        """``day``'s quarantine partition as a URI."""
        return _uri(self.quarantine_bucket, self.quarantine_prefix(day))

    # --- reference (dimensions) ------------------------------------------------------------------

    @property
    def reference_root(self) -> str:
        """Dimension tables: ``s3://<silver>/<reference_prefix>/`` (one folder per dimension)."""
        return _uri(self.silver_bucket, f"{self.settings.reference_prefix.strip('/')}/")

    def dimension_key(self, dimension: str) -> str:
        """Object key of a dimension's table, e.g. ``reference/airlines/airlines.parquet``."""
        return reference_key(self.settings.reference_prefix, dimension)

    def dimension_location(self, dimension: str) -> str:
        """A dimension table's folder (its DDL ``LOCATION``), e.g. ``s3://lake-silver/reference/airlines/``."""
        return reference_location(self.reference_root, dimension)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimension datasets the fact refers to, sorted, each once."""
        return tuple(sorted({d.dataset for d in self.contract.dimensions}))

    # --- gold and the catalog ---------------------------------------------------------------------

    @property
    def gold_root(self) -> str:
        """Gold root: ``s3://<gold>/`` (one folder per gold table)."""
        return _uri(self.settings.gold_bucket)

    @property
    def gold_tables(self) -> tuple[str, ...]:
        """The gold tables, in contract order (``gold.tables``), e.g. ``("flights", "carrier_daily")``."""
        return tuple(self.contract.gold.get("tables", {}))

    @property
    def gold_fact_table(self) -> str:
        """The gold table of one row per fact row: the gold table named as the silver table
        (``flights``), else the first of :attr:`gold_tables`.

        :raises KeyError: when the contract has no gold tables.
        """
        if not self.gold_tables:
            raise KeyError(f"dataset {self.dataset} has no gold tables (gold.tables)")
        return self.silver_table if self.silver_table in self.gold_tables else self.gold_tables[0]

    def gold_location(self, table: str) -> str:
        """A gold table's root, e.g. ``s3://lake-gold/carrier_daily/``.

        :raises KeyError: when ``table`` is not one of :attr:`gold_tables`.
        """
        if table not in self.gold_tables:
            raise KeyError(f"dataset {self.dataset} has no gold table {table!r}; gold tables: {list(self.gold_tables)}")
        return f"{self.gold_root}{table}/"

    def gold_path(self, table: str, day: date | str) -> str:
        """``day``'s partition of a gold table, e.g. ``s3://lake-gold/carrier_daily/dt=2013-01-05/``.

        :raises KeyError: as :meth:`gold_location`.
        """
        return f"{self.gold_location(table)}{self.partition(_day(day))}/"

    @property
    def silver_catalog_table(self) -> tuple[str, str]:
        """(database, table) of the silver fact table in the Glue catalog, e.g. ``("lake_silver", "flights")``."""
        return self.settings.silver_database, self.silver_table

    @property
    def gold_catalog_tables(self) -> tuple[tuple[str, str], ...]:
        """(database, table) of each gold table in the Glue catalog (the crawler names a table after its folder)."""
        return tuple((self.settings.gold_database, t) for t in self.gold_tables)

    def dq_ruleset(self, table: str) -> str:
        """Name of the Glue Data Quality ruleset of gold ``table`` (generated by
        :func:`lake.dqdl.ruleset`): ``<gold database>-<table>-dq``, e.g. ``lake_gold-flights-dq``
        (rulesets are per account and region, so the gold database keeps two lakes apart).

        :raises KeyError: as :meth:`gold_location`.
        """
        self.gold_location(table)
        return f"{self.settings.gold_database}-{table}-dq"

    # --- CloudWatch alarms ---------------------------------------------------------------------------

    #: The kinds of alarm each fact dataset gets (lake/deploy/provision.py, step ``alarms``).
    ALARM_KINDS = ("reject-rate", "dq-failures", "bronze-missing")

    def alarm(self, kind: str) -> str:
        """Name of the dataset's CloudWatch alarm of ``kind`` (one of :attr:`ALARM_KINDS`):
        ``<gold database>-<dataset>-<kind>``, e.g. ``lake_gold-flights-reject-rate`` (alarms are per
        account and region, so the gold database keeps two lakes apart, as for rulesets).

        :raises KeyError: for an unknown kind.
        """
        if kind not in self.ALARM_KINDS:
            raise KeyError(f"no alarm kind {kind!r}; kinds: {', '.join(self.ALARM_KINDS)}")
        return f"{self.settings.gold_database}-{self.dataset}-{kind}"

    # --- the Glue job's day lease -----------------------------------------------------------------

    @property
    def lease_root(self) -> str:
        """Where the Glue job holds one lease object per day it writes:
        ``s3://<artifacts>/leases/<glue_job>/``."""
        return _uri(self.settings.artifacts_bucket, f"leases/{self.glue_job}/")

    def lease_key(self, day: date | str) -> str:
        """Key of ``day``'s lease, e.g. ``leases/lake-flights-gold/dt=2013-01-05.json``."""
        return f"{split_uri(self.lease_root)[1]}{self.partition(_day(day))}.json"

    # --- a stream dataset: Kinesis Data Firehose into bronze -----------------------------------

    def _stream(self) -> dict[str, Any]:
        if self.contract.kind != "stream":
            raise KeyError(f"dataset {self.dataset} is a {self.contract.kind}, not a stream")
        return self.contract.stream

    @property
    def delivery_stream(self) -> str:
        """The Firehose delivery stream: ``lake-<dataset, _ as ->``, e.g. ``lake-flight-events``
        (names: 1-64 of ``[a-zA-Z0-9_.-]``, Firehose API Reference, CreateDeliveryStream).

        :raises KeyError: when the dataset is not a stream.
        """
        self._stream()
        return f"lake-{self.dataset.replace('_', '-')}"

    @property
    def stream_partition_keys(self) -> dict[str, str]:
        """Partition name -> jq expression over a record, in partition order (the contract's
        ``stream.partition_keys``), e.g. ``{"dt": ".event_time[0:10]", "hour": ".event_time[11:13]"}``."""
        return dict(self._stream()["partition_keys"])

    @property
    def stream_partition_query(self) -> str:
        """The dynamic-partitioning ``MetadataExtractionQuery`` (jq), e.g.
        ``{dt: .event_time[0:10], hour: .event_time[11:13]}``
        (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html)."""
        return "{" + ", ".join(f"{k}: {v}" for k, v in self.stream_partition_keys.items()) + "}"

    @property
    def stream_prefix(self) -> str:
        """The delivery stream's S3 ``Prefix`` in the bronze bucket: the contract's
        ``source.prefix``, then ``<key>=!{partitionKeyFromQuery:<key>}/`` per partition key, e.g.
        ``flight_events/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/``."""
        keys = "".join(f"{k}=!{{partitionKeyFromQuery:{k}}}/" for k in self.stream_partition_keys)
        return f"{self.contract.source.prefix}{keys}"

    @property
    def stream_error_prefix(self) -> str:
        """The delivery stream's ``ErrorOutputPrefix`` (bronze bucket): records Firehose cannot
        partition or deliver, under the quarantine prefix, by error type and arrival day, e.g.
        ``quarantine/flight_events/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/``
        (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html)."""
        self._stream()
        return (f"{self.contract.table_path(self.settings.quarantine_prefix)}"
                "!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/")

    def stream_partition_prefix(self, **values: str) -> str:
        """Key prefix of one delivered partition, given a value for every partition key (in order),
        e.g. ``stream_partition_prefix(dt="2013-06-01", hour="10")`` ->
        ``flight_events/dt=2013-06-01/hour=10/``.

        :raises KeyError: when ``values`` does not name exactly the partition keys.
        """
        keys = list(self.stream_partition_keys)
        if sorted(values) != sorted(keys):
            raise KeyError(f"dataset {self.dataset}: partition values {sorted(values)} must be {keys}")
        return self.contract.source.prefix + "".join(f"{k}={values[k]}/" for k in keys)

    def stream_hour(self, start: datetime) -> dict[str, str]:
        """The partition values of the event hour starting at ``start`` (aware, converted to UTC),
        e.g. ``{"dt": "2013-06-01", "hour": "05"}``: what the contract's jq ``partition_keys``
        (``.event_time[0:10]``, ``.event_time[11:13]``) give for an event of that hour.

        :raises KeyError: when the stream is not partitioned by exactly ``dt`` and ``hour``.
        """
        if list(self.stream_partition_keys) != ["dt", "hour"]:
            raise KeyError(f"dataset {self.dataset}: an hourly run needs partition_keys dt, hour; "
                           f"the contract has {list(self.stream_partition_keys)}")
        utc = start.astimezone(UTC)
        return {"dt": utc.strftime("%Y-%m-%d"), "hour": utc.strftime("%H")}

    def stream_hour_partition(self, start: datetime) -> str:
        """The registry's partition of the event hour at ``start``, e.g. ``dt=2013-06-01/hour=05``
        (:func:`firehose_delivery_rule`'s partition of the hour's objects)."""
        return "/".join(f"{k}={v}" for k, v in self.stream_hour(start).items())

    @property
    def stream_runs_root(self) -> str:
        """Where the hourly Glue job records each run (``run.json``: objects read, records, events,
        duplicates): ``s3://<artifacts>/stream-runs/<dataset>/``."""
        self._stream()
        return _uri(self.settings.artifacts_bucket, f"stream-runs/{self.dataset}/")

    def stream_run_key(self, start: datetime) -> str:
        """Key of the hour's run record, e.g. ``stream-runs/flight_events/dt=2013-06-01/hour=05/run.json``."""
        return f"{split_uri(self.stream_runs_root)[1]}{self.stream_hour_partition(start)}/run.json"

    def stream_glue_arguments(self) -> dict[str, str]:
        """The hourly Glue job's default arguments (``--dt``/``--hour`` come from each run): the
        stream's bronze folder, the gold root, the runs root (no trailing slashes), the gold tables."""
        return {
            "--bronze_path": self.bronze_root.rstrip("/"),
            "--gold_path": self.gold_root.rstrip("/"),
            "--runs_path": self.stream_runs_root.rstrip("/"),
            "--gold_tables": ",".join(self.gold_tables),
            "--job-language": "python",
            "--enable-continuous-cloudwatch-log": "true",
        }

    # --- the delivery registry --------------------------------------------------------------------

    def delivery_rules(self) -> list[dict[str, str]]:
        """The registry's rules for this dataset's bronze deliveries (see
        :func:`firehose_delivery_rule` for the shape). A daily source: the zip and the manifest, the
        pattern of the contract's key template (:func:`day_key_pattern`) and the partition
        ``<partition_name>={Y}-{m}-{d}`` (``dt=2013-01-05``), the same as :meth:`partition` of the
        day; ``prefix`` is the dataset's bronze folder. A stream (contract kind ``stream``): the rule
        of its Firehose objects, :func:`firehose_delivery_rule` over the bronze bucket and the
        stream's ``stream_prefix`` (dynamic partitioning).
        """
        if self.contract.kind == "stream":
            prefix = self.stream_prefix
            return [firehose_delivery_rule(self.dataset, self.bronze_bucket, prefix, dynamic_partitioning=True)]
        prefix = split_uri(self.bronze_root)[1]
        templates = [self.contract.source.prefix + self.contract.source.file_name]
        if self.contract.source.manifest_name:
            templates.append(self.contract.source.prefix + self.contract.source.manifest_name)
        return [{"dataset": self.dataset, "bucket": self.bronze_bucket, "prefix": prefix,
                 "pattern": day_key_pattern(t), "partition": f"{self.partition_name}={{Y}}-{{m}}-{{d}}"}
                for t in templates]

    # --- what travels to the Lambda and to Glue ---------------------------------------------------

    def lambda_event(self, day: date | str | None = None) -> dict[str, Any]:
        """The extractor's event for ``day`` (default: the Jinja forms, for the DAG): ``ds``,
        ``dataset``, ``bucket`` (bronze), ``key``, ``manifest_key``, ``silver_bucket``,
        ``silver_prefix`` and ``quarantine_bucket``, ``quarantine_prefix`` (the day's partition
        prefixes), ``partition`` (``{"name", "value"}``). See include/lambdas/extractor/handler.py."""
        if day is None:
            ds, (key, manifest) = DS, self.contract.day_keys(DS, DS_NODASH)
            silver = self.contract.partition_path(DS, self.settings.silver_prefix)
            quarantine = self.contract.partition_path(DS, self.settings.quarantine_prefix)
        else:
            d = _day(day)
            ds, key, manifest = d.isoformat(), self.bronze_key(d), self.manifest_key(d)
            silver, quarantine = self.silver_prefix(d), self.quarantine_prefix(d)
        return {
            "ds": ds,
            "dataset": self.dataset,
            "bucket": self.bronze_bucket,
            "key": key,
            "manifest_key": manifest,
            "silver_bucket": self.silver_bucket,
            "silver_prefix": silver,
            "quarantine_bucket": self.quarantine_bucket,
            "quarantine_prefix": quarantine,
            "partition": {"name": self.partition_name, "value": ds},
        }

    def lambda_payload(self, day: date | str | None = None) -> str:
        """:meth:`lambda_event` as JSON (``json.dumps``), the ``payload`` of the DAG's Lambda call."""
        return json.dumps(self.lambda_event(day))

    def glue_arguments(self) -> dict[str, str]:
        """The Glue job's default arguments (``--ds`` comes from each run): the silver table root,
        the reference root, the gold root, the lease root (no trailing slashes), the partition
        name and the gold tables (comma-separated, contract order)."""
        return {
            "--silver_path": self.silver_root.rstrip("/"),
            "--dimensions_path": self.reference_root.rstrip("/"),
            "--gold_path": self.gold_root.rstrip("/"),
            "--lease_path": self.lease_root.rstrip("/"),
            "--partition_name": self.partition_name,
            "--gold_tables": ",".join(self.gold_tables),
            "--job-language": "python",
            "--enable-continuous-cloudwatch-log": "true",
        }


def for_dataset(settings: Settings | None = None, dataset: str | None = None) -> Layout:
    """The layout of ``dataset`` (default ``settings.dataset``) with ``settings`` (default: from
    the environment). Reads the contract file. :raises ContractError: no valid contract."""
    from lake import contracts
    from lake.settings import get

    s = settings or get()
    return Layout(s, contracts.load(dataset or s.dataset))
