"""The lake's names and limits: one place, read from ``LAKE_*`` environment variables.

Every name the DAGs, the provisioning code and the CLI use (buckets, prefixes, the Lambda
function, the Glue job, the crawlers, databases, the Athena work group, the SNS topic) comes
from :class:`Settings`; the object keys, paths and tables built from them and the dataset
contract come from :class:`lake.layout.Layout`. Defaults are the local names; on AWS set the variables (bucket names
are global, so at least the four buckets need your own names). Credentials and endpoints are
*not* settings: they come from Airflow's ``aws_default`` connection (or boto3's usual chain for
the ``lake`` command).

==============================  =========================================  ============================
variable                        default                                    what
==============================  =========================================  ============================
LAKE_REGION                     us-east-1                                  AWS region of every resource
LAKE_ACCOUNT_ID                 123456789012 (localaws's account)          for ARNs (topic, roles)
LAKE_DATASET                    flights                                    the fact dataset (contract)
LAKE_DAILY_DATASETS             flights,sales                              facts with a daily DAG, a,b
LAKE_TPCH_SCALE                 1                                          TPC-H scale factor (sales)
LAKE_DATASET_NAMES              {}                                         per-dataset job/crawler names
LAKE_BRONZE_BUCKET              lake-bronze                                raw zips + manifests
LAKE_SILVER_BUCKET              lake-silver                                silver, quarantine, reference
LAKE_GOLD_BUCKET                lake-gold                                  gold tables
LAKE_ARTIFACTS_BUCKET           lake-artifacts                             code + Athena results
LAKE_SILVER_PREFIX              (none)                                     silver tables' folder (silver bucket)
LAKE_QUARANTINE_PREFIX          quarantine                                 rejected rows (silver bucket)
LAKE_REFERENCE_PREFIX           reference                                  dimension tables
LAKE_DASHBOARDS_PREFIX          dashboards                                 dashboards' cached Parquet (artifacts bucket)
LAKE_SILVER_DATABASE            lake_silver                                Glue database (silver, dims)
LAKE_GOLD_DATABASE              lake_gold                                  Glue database (gold)
LAKE_WORKGROUP                  lake                                       Athena work group
LAKE_ATHENA_BYTES_CUTOFF        10737418240 (10 GiB)                       bytes a query may scan (>= 1e7)
LAKE_LAMBDA_FUNCTION            lake-extractor                             the extractor
LAKE_LAMBDA_TIMEOUT             300                                        seconds (Lambda max 900)
LAKE_LAMBDA_MEMORY              1024                                       MB (pyarrow needs >= 512)
LAKE_LAMBDA_EPHEMERAL_STORAGE   2048                                       MB of /tmp (zip + Parquet of a day)
LAKE_LAMBDA_LAYER_ARN           AWS SDK for pandas, python3.12 (below)     "" = no layer
LAKE_GLUE_JOB                   lake-flights-gold                          LAKE_DATASET's gold Glue job
LAKE_GLUE_WORKERS               2                                          G.1X workers per run
LAKE_GLUE_TIMEOUT               30                                         minutes per job run
LAKE_GLUE_MAX_CONCURRENT_RUNS   3                                          = the DAG's max_active_runs
LAKE_POLL_INTERVAL              10                                         seconds between status checks of a Glue run or crawl
LAKE_ATHENA_POLL_INTERVAL       2                                          seconds between status checks of an Athena query (float)
LAKE_SILVER_CRAWLER             lake-silver-crawler                        catalogs LAKE_DATASET's silver
LAKE_GOLD_CRAWLER               lake-gold-crawler                          catalogs its gold tables
LAKE_LAMBDA_ROLE_ARN            arn:aws:iam::<account>:role/lake-extractor  execution role
LAKE_GLUE_ROLE_ARN              arn:aws:iam::<account>:role/lake-glue       job + crawler role
LAKE_REGISTRY_FUNCTION          lake-registry                              S3 event -> delivery registry
LAKE_REGISTRY_TABLE             lake_deliveries                            DynamoDB: one item per object version
LAKE_REGISTRY_TTL_DAYS          400                                        days an item is kept after its event
LAKE_REGISTRY_ROLE_ARN          arn:aws:iam::<account>:role/lake-registry  the registry's execution role
LAKE_FIREHOSE_ROLE_ARN          arn:aws:iam::<account>:role/lake-firehose  the delivery stream's role
LAKE_FIREHOSE_BUFFER_MB         64                                         BufferingHints.SizeInMBs (64-128)
LAKE_FIREHOSE_BUFFER_SECONDS    60                                         BufferingHints.IntervalInSeconds (1-900)
LAKE_STREAM_LATENESS            900 (15 min)                               seconds an hour waits for late events
LAKE_STREAM_LATE_LOOKBACK       24                                         past hours a run counts late events of
LAKE_SNS_TOPIC                  lake-events                                run summaries and alerts
LAKE_INBOX_QUEUE                lake-events-inbox                          SQS queue subscribed (local)
LAKE_MAX_REJECT_RATE            0.05                                       rejected / read, per day
LAKE_MAX_ACTIVE_RUNS            3                                          days processed side by side
LAKE_SENSOR_TIMEOUT             21600                                      seconds to wait for bronze
LAKE_SENSOR_POKE_INTERVAL       60                                         seconds between checks
LAKE_SENSOR_DEFERRABLE          true                                       wait in the triggerer
LAKE_RETRIES                    3                                          task retries (backoff doubles)
LAKE_RETRY_DELAY                30                                         seconds before the 1st retry
LAKE_BRONZE_DEADLINE_HOUR       6                                          UTC hour a day's file is due by (alarm)
LAKE_LINEAGE_TRANSPORT          http if LAKE_LINEAGE_URL is set, else file  OpenLineage: file, console, http, off
LAKE_LINEAGE_FILE               $AIRFLOW_HOME/openlineage/events.jsonl     file transport: one event a line
LAKE_LINEAGE_URL                (none)                                     http transport, e.g. Marquez http://localhost:5000
LAKE_LINEAGE_ENDPOINT           api/v1/lineage                             http transport: path under the URL
LAKE_LINEAGE_NAMESPACE          lake                                       OpenLineage namespace of the jobs
==============================  =========================================  ============================

Names that differ per dataset (the Glue job and the two crawlers; buckets, prefixes and databases
are shared, tables and folders come from each contract): ``LAKE_DATASET`` uses ``LAKE_GLUE_JOB``,
``LAKE_SILVER_CRAWLER`` and ``LAKE_GOLD_CRAWLER``; another dataset ``<d>`` uses
``lake-<d>-gold``, ``lake-<d>-silver-crawler`` and ``lake-<d>-gold-crawler``; ``LAKE_DATASET_NAMES``
(JSON, e.g. ``{"sales": {"glue_job": "sales-gold"}}``) overrides any of them per dataset
(:meth:`Settings.names_for`).

``LAKE_TPCH_SCALE`` is the TPC-H scale factor of the datasets generated by tpchgen-cli (sales and
its dimensions, ``lake.tpch``) wherever no ``--scale`` is given: the replay, ``lake source
load-dimensions`` and provisioning's dimension tables (facts and dimensions must use the same
scale: keys depend on it). 1 = 1,500,000 orders; the tests use 0.01.

The AWS SDK for pandas layer ARN is published per region and version at
https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html; the default is the python3.12
layer of account 336392948345 in ``LAKE_REGION``, version :data:`PANDAS_LAYER_VERSION`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Version of the AWS SDK for pandas layer (python3.12) the default ARN names.
PANDAS_LAYER_VERSION = 16
#: The AWS account that publishes the AWS SDK for pandas layers.
PANDAS_LAYER_ACCOUNT = "336392948345"


class Settings(BaseSettings):
    """The lake's settings (see the module docstring for variables and defaults).

    :raises pydantic.ValidationError: when a variable does not parse (e.g. a non-number
        ``LAKE_MAX_REJECT_RATE``), naming the variable.
    """

    model_config = SettingsConfigDict(env_prefix="LAKE_", frozen=True, extra="ignore")

    region: str = "us-east-1"
    account_id: str = "123456789012"
    dataset: str = "flights"
    daily_datasets: str = "flights,sales"
    tpch_scale: float = Field(1.0, gt=0)
    dataset_names: dict[str, dict[str, str]] = Field(default_factory=dict)
    bronze_bucket: str = "lake-bronze"
    silver_bucket: str = "lake-silver"
    gold_bucket: str = "lake-gold"
    artifacts_bucket: str = "lake-artifacts"
    silver_prefix: str = ""
    quarantine_prefix: str = "quarantine"
    reference_prefix: str = "reference"
    dashboards_prefix: str = "dashboards"
    silver_database: str = "lake_silver"
    gold_database: str = "lake_gold"
    workgroup: str = "lake"
    #: The work group's BytesScannedCutoffPerQuery: a query scanning more is cancelled. AWS's
    #: minimum is 10000000 bytes (botocore's model: BytesScannedCutoffValue min).
    athena_bytes_cutoff: int = Field(10 * 1024**3, ge=10_000_000)
    lambda_function: str = "lake-extractor"
    lambda_timeout: int = Field(300, ge=1, le=900)
    lambda_memory: int = Field(1024, ge=512, le=10240)
    lambda_ephemeral_storage: int = Field(2048, ge=512, le=10240)
    lambda_layer_arn: str | None = None
    glue_job: str = "lake-flights-gold"
    glue_workers: int = Field(2, ge=2)
    glue_timeout: int = Field(30, ge=1)
    glue_max_concurrent_runs: int = Field(3, ge=1)
    #: Seconds between the DAG's status checks of a Glue job run (the triggerer's waiter) and of a
    #: crawl. 10 suits AWS, where runs and crawls take minutes; the demo stack and the tests use 2
    #: (localaws runs small days in seconds, so each check saved shortens every run).
    poll_interval: int = Field(10, ge=1, le=300)
    #: Seconds between an AthenaOperator's status checks of its query (``sleep_time``). 2 suits AWS,
    #: where a small query takes a few seconds; the demo stack and the tests use 0.5 (localaws answers a
    #: small day's query in well under a second, and each query's first check comes ~0.1 s after
    #: the start, so 2 made every query task wait ~2 s: measured 2.6 s per DQ task, 2026-12-02).
    athena_poll_interval: float = Field(2.0, gt=0, le=60)
    silver_crawler: str = "lake-silver-crawler"
    gold_crawler: str = "lake-gold-crawler"
    lambda_role_arn: str | None = None
    glue_role_arn: str | None = None
    registry_function: str = "lake-registry"
    registry_table: str = "lake_deliveries"
    #: Days a delivery item lives after its S3 event (DynamoDB TTL on ``ttl``): longer than bronze
    #: keeps the objects (90 days, lake.deploy.provision.BRONZE_EXPIRE_DAYS), so the registry still
    #: answers for a backfill of any day bronze holds, and for a year of watermarks.
    registry_ttl_days: int = Field(400, ge=1)
    registry_role_arn: str | None = None
    firehose_role_arn: str | None = None
    #: The delivery stream's BufferingHints (lake.deploy.provision, step ``stream``). With dynamic
    #: partitioning AWS requires SizeInMBs >= 64 ("Buffering hints", Amazon Data Firehose Developer
    #: Guide, https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html); IntervalInSeconds
    #: 0 (zero buffering) is not available with it, 900 is the maximum. The interval is also the
    #: longest a record may sit in a buffer, so the hourly DAG waits that long past the watermark.
    firehose_buffer_mb: int = Field(64, ge=64, le=128)
    firehose_buffer_seconds: int = Field(60, ge=1, le=900)
    #: Seconds past an hour's end that its run waits for events still on their way (the allowed
    #: lateness of the hourly DAG's watermark sensor).
    stream_lateness: int = Field(15 * 60, ge=0)
    #: How many hours before its own an hourly run looks back for late deliveries to count.
    stream_late_lookback: int = Field(24, ge=0, le=24 * 14)
    sns_topic: str = "lake-events"
    inbox_queue: str = "lake-events-inbox"
    max_reject_rate: float = Field(0.05, ge=0, le=1)
    max_active_runs: int = Field(3, ge=1)
    sensor_timeout: int = Field(6 * 3600, ge=1)
    sensor_poke_interval: int = Field(60, ge=1)
    sensor_deferrable: bool = True
    retries: int = Field(3, ge=0)
    retry_delay: int = Field(30, ge=1)
    #: The hour (UTC, 0-23) by which the previous day's bronze file must have arrived, or the
    #: ``bronze-missing`` alarm fires (lake/deploy/provision.py, step ``alarms``).
    bronze_deadline_hour: int = Field(6, ge=0, le=23)
    #: OpenLineage (lake/lineage/): where Airflow's OpenLineage provider sends the events
    #: (:func:`lake.lineage.airflow_config` turns these into its ``[openlineage]`` options).
    lineage_transport: Literal["file", "console", "http", "off"] | None = None
    lineage_file: str | None = None
    lineage_url: str | None = None
    lineage_endpoint: str = "api/v1/lineage"
    lineage_namespace: str = "lake"

    # Derived names ---------------------------------------------------------------------------

    @cached_property
    def topic_arn(self) -> str:
        """The SNS topic's ARN."""
        return f"arn:aws:sns:{self.region}:{self.account_id}:{self.sns_topic}"

    @cached_property
    def lambda_role(self) -> str:
        """The extractor's execution role ARN."""
        return self.lambda_role_arn or f"arn:aws:iam::{self.account_id}:role/lake-extractor"

    @cached_property
    def registry_role(self) -> str:
        """The registry Lambda's execution role ARN."""
        return self.registry_role_arn or f"arn:aws:iam::{self.account_id}:role/lake-registry"

    @cached_property
    def firehose_role(self) -> str:
        """The Firehose delivery stream's role ARN (Firehose assumes it to write into bronze)."""
        return self.firehose_role_arn or f"arn:aws:iam::{self.account_id}:role/lake-firehose"

    @cached_property
    def registry_table_arn(self) -> str:
        """The delivery registry table's ARN."""
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{self.registry_table}"

    @cached_property
    def glue_role(self) -> str:
        """The Glue job's and crawlers' role ARN."""
        return self.glue_role_arn or f"arn:aws:iam::{self.account_id}:role/lake-glue"

    @cached_property
    def pandas_layer(self) -> str | None:
        """The AWS SDK for pandas layer ARN, or None when ``LAKE_LAMBDA_LAYER_ARN`` is empty."""
        if self.lambda_layer_arn is not None:
            return self.lambda_layer_arn or None
        return (f"arn:aws:lambda:{self.region}:{PANDAS_LAYER_ACCOUNT}:layer:AWSSDKPandas-Python312:"
                f"{PANDAS_LAYER_VERSION}")

    @cached_property
    def daily_dataset_names(self) -> tuple[str, ...]:
        """The fact datasets that get a daily DAG (and a provisioned Glue job, crawlers and
        dimension tables): ``LAKE_DAILY_DATASETS`` split on commas (default ``flights,sales``);
        set to empty, ``(LAKE_DATASET,)``."""
        names = tuple(n.strip() for n in self.daily_datasets.split(",") if n.strip())
        return names or (self.dataset,)

    def names_for(self, dataset: str) -> dict[str, str]:
        """The names that differ per dataset: ``{"glue_job", "silver_crawler", "gold_crawler"}``
        (rule in the module docstring).

        :raises ValueError: when ``LAKE_DATASET_NAMES`` names a key other than these three.
        """
        if dataset == self.dataset:
            names = {"glue_job": self.glue_job, "silver_crawler": self.silver_crawler,
                     "gold_crawler": self.gold_crawler}
        else:
            names = {"glue_job": f"lake-{dataset}-gold", "silver_crawler": f"lake-{dataset}-silver-crawler",
                     "gold_crawler": f"lake-{dataset}-gold-crawler"}
        override = self.dataset_names.get(dataset, {})
        unknown = sorted(set(override) - set(names))
        if unknown:
            raise ValueError(f"LAKE_DATASET_NAMES[{dataset!r}] names {unknown}; allowed: {sorted(names)}")
        return {**names, **override}

    @cached_property
    def buckets(self) -> tuple[str, ...]:
        """All four buckets: bronze, silver, gold, artifacts."""
        return (self.bronze_bucket, self.silver_bucket, self.gold_bucket, self.artifacts_bucket)


def get() -> Settings:
    """The settings from the current environment (read anew each call: cheap, no I/O)."""
    return Settings()
