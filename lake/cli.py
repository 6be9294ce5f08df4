"""``lake``: the data lake's command line.

    lake source replay --dataset flights --start 2013-01-01 --end 2013-01-31 [--shift-to YYYY-MM-DD]
                       [--bucket B] [--endpoint-url URL]
    lake source replay --dataset sales --start 1995-03-01 --end 1995-03-07 [--scale 1]
    lake source load-dimensions [--dataset NAME ...] [--scale 1] [--bucket B] [--endpoint-url URL]
    lake build lambda [--out dist/extractor.zip]
    lake package mwaa [--out dist/mwaa] [--airflow-version 3.3.1] [--bucket B] [--environment NAME]
    lake provision [--endpoint-url URL] [--step NAME ...] [--inbox | --no-inbox]
    lake demo [--dataset flights|sales] [--start 2013-01-01] [--end 2013-01-07] [--no-ui] | lake demo --stop
    lake stream send (--dataset flight_events --day 2013-06-01 | --template FILE) [--rate 100]
                     [--speedup N] [--count N] [--duration S] [--duplicates 0.01] [--late 0.02]
                     [--late-delay S] [--seed N] [--stream NAME] [--endpoint-url URL]
    lake contracts check
    lake contracts dqdl DATASET
    lake dashboards check [--dir include/dashboards]

Buckets and prefixes come from :mod:`lake.settings` (``$LAKE_BRONZE_BUCKET`` for replays,
``$LAKE_SILVER_BUCKET`` and ``$LAKE_REFERENCE_PREFIX`` for reference tables); the endpoint from
``$AWS_ENDPOINT_URL`` (unset: AWS itself). ``--scale`` is the TPC-H scale
factor of the ``tpchgen-cli`` datasets (``sales`` and its dimensions, :mod:`lake.tpch`; default
1); facts and dimensions must be loaded at the same scale.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path

from lake import contracts, layout, settings, source
from lake.deploy import package


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from exc


def _replay(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    contract = contracts.load(args.dataset)
    if contract.kind != "fact":
        raise SystemExit(f"dataset {args.dataset} is a {contract.kind}; use 'lake source load-dimensions'")
    lay = layout.Layout(settings.get(), contract)
    bucket = args.bucket or lay.bronze_bucket
    s3 = source.s3_client(args.endpoint_url)
    days = len(source.day_range(args.start, args.end))
    console = Console(stderr=True)
    total_rows = 0
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rows]:,} rows"), TimeRemainingColumn(), console=console,
                  disable=args.quiet) as progress:
        task = progress.add_task(f"{contract.name} -> s3://{bucket}", total=days, rows=0)

        def advance(day_file: source.DayFile) -> None:
            nonlocal total_rows
            total_rows += day_file.rows
            progress.update(task, advance=1, rows=total_rows, description=f"{contract.name} {day_file.day}")

        manifests = source.replay(contract, args.start, args.end, bucket=bucket, s3=s3, shift_to=args.shift_to,
                                  progress=advance, scale=args.scale)
    console.print(f"replayed {len(manifests)} days, {total_rows:,} rows of {contract.name} into s3://{bucket}/"
                  f"{layout.split_uri(lay.bronze_root)[1]}")
    if args.json:
        print(json.dumps(manifests, indent=2))
    return 0


def _load_dimensions(args: argparse.Namespace) -> int:
    s = settings.get()
    bucket = args.bucket or s.silver_bucket
    all_ = contracts.load_all()
    wanted = set()
    for name in args.dataset or []:  # a fact stands for its dimensions
        fact = all_.get(name)
        wanted |= {d.dataset for d in fact.dimensions} if fact and fact.kind == "fact" else {name}
    dims = [c for c in all_.values() if c.kind == "dimension" and (not wanted or c.name in wanted)]
    out = source.load_dimensions(dims, bucket=bucket, s3=source.s3_client(args.endpoint_url),
                                 reference_prefix=s.reference_prefix, scale=args.scale)
    for item in out:
        print(f"{item['dataset']}: {item['rows']} rows, {item['bytes']} bytes -> {item['path']}")
    return 0


def _build_lambda(args: argparse.Namespace) -> int:
    pkg = package.build_lambda(args.out)
    print(f"{args.out}: {len(pkg.data)} bytes, sha256 {pkg.sha256} (CodeSha256 {pkg.code_sha256})")
    for name in pkg.files:
        print(f"  {name}")
    return 0


def _package_mwaa(args: argparse.Namespace) -> int:
    from lake.deploy import mwaa

    pkg = mwaa.build(args.out, args.airflow_version or mwaa.DEFAULT_AIRFLOW_VERSION)
    dags = {k: n for k, n in pkg.files.items() if k.startswith("dags/")}
    print(f"{pkg.root}: Amazon MWAA package for Apache Airflow {pkg.airflow_version} (Python {pkg.python_version})")
    groups = {"dags/ (DAG files)": [k for k in dags if k.count("/") == 1],
              "dags/lake/": [k for k in dags if k.startswith("dags/lake/")],
              "dags/include/": [k for k in dags if k.startswith("dags/include/")]}
    for label, keys in groups.items():
        print(f"  {label:<22} {len(keys):>4} files {sum(dags[k] for k in keys):>10,} bytes")
    for name in ("plugins.zip", "requirements.txt", "startup.sh"):
        print(f"  {name:<22} {1:>4} file  {pkg.files[name]:>10,} bytes")
    print(f"  requirements: {', '.join(pkg.requirements)}")
    print("deploy (a versioned bucket; docs/deploy-mwaa.md):")
    for command in mwaa.deploy_commands(pkg, args.bucket, args.environment):
        print(f"  {command}")
    return 0


def _provision(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from lake.deploy import provision

    s = settings.get()
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    aws = provision.Clients(s.region, endpoint)
    steps = args.step or list(provision.STEPS)
    unknown = [name for name in steps if name not in provision.STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; steps are {list(provision.STEPS)}")
    table = Table("step", "resource", "action", title=f"lake provision -> {endpoint or 'AWS ' + s.region}")
    for name in steps:
        for row in provision.run_step(name, s, aws, args.inbox):
            table.add_row(name, row["resource"], row["action"])
    Console().print(table)
    return 0


#: The demo's default days per dataset (``lake demo --dataset``): a week of each.
DEMO_DAYS = {"flights": (date(2013, 1, 1), date(2013, 1, 7)), "sales": (date(1995, 3, 1), date(1995, 3, 7))}


def _demo(args: argparse.Namespace) -> int:
    from lake.dev import demo

    stack = demo.Stack(localaws_port=args.localaws_port, airflow_port=args.port)
    if args.stop:
        stopped = demo.stop(stack)
        print("stopped " + (", ".join(stopped) if stopped else "nothing (no demo running)"))
        return 0
    ui = not args.no_ui and os.environ.get("CI", "").lower() not in ("true", "1", "yes")
    first, last = DEMO_DAYS.get(args.dataset, DEMO_DAYS["flights"])
    return demo.run(args.start or first, args.end or last, ui=ui, stack=stack, dataset=args.dataset)


def _stream_send(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from lake.stream import events, send, templates

    if (args.dataset is None) == (args.template is None):
        raise ValueError("give either --dataset (with --day) or --template")
    lay = layout.Layout(settings.get(), contracts.load(args.dataset or "flight_events"))
    if lay.contract.kind != "stream":
        raise ValueError(f"dataset {lay.dataset} is a {lay.contract.kind}, not a stream (e.g. flight_events)")
    stream = args.stream or lay.delivery_stream
    if args.template is not None:
        if args.speedup or args.day:
            raise ValueError("--speedup and --day go with --dataset (a template's records have no event time)")
        records = send.template_records(templates.RecordTemplate(args.template, seed=args.seed))
        total, what = args.count, f"{args.template.name} -> {stream}"
    else:
        if args.day is None:
            raise ValueError("--dataset needs --day YYYY-MM-DD")
        day_events = events.flight_events(args.day, dataset=lay.dataset)
        records = send.event_records(day_events, events.event_epoch, lay.contract.stream["event_id"])
        total = min(len(day_events), args.count) if args.count is not None else len(day_events)
        what = f"{lay.dataset} {args.day} -> {stream}"
    firehose = boto3.client("firehose", endpoint_url=args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
                            config=Config(retries={"mode": "standard", "max_attempts": 3}))
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]:,.0f}/s  retried {task.fields[retried]:,}  failed "
                             "{task.fields[failed]:,}"), TimeElapsedColumn(), console=console,
                  disable=args.quiet) as bar:
        task = bar.add_task(what, total=total, rate=0.0, retried=0, failed=0)

        def advance(stats: send.Stats) -> None:
            bar.update(task, completed=min(stats.records, total or stats.records), rate=stats.rate,
                       retried=stats.retried, failed=stats.failed)

        sender = send.Sender(firehose, stream, records, rate=args.rate, speedup=args.speedup, count=args.count,
                             duration=args.duration, duplicates=args.duplicates, late=args.late,
                             late_delay=args.late_delay, seed=args.seed, progress=advance)
        interrupted = False
        try:
            stats = sender.run()
        except KeyboardInterrupt:
            stats, interrupted = sender.stats, True
    table = Table("records", "sent", "failed", "retried", "duplicated", "late", "batches", "MB", "seconds", "rate/s",
                  title=f"lake stream send -> {stream}" + (" (interrupted)" if interrupted else ""))
    table.add_row(*(f"{v:,}" for v in (stats.records, stats.sent, stats.failed, stats.retried, stats.duplicated,
                                        stats.late, stats.batches)),
                  f"{stats.bytes / 1e6:.2f}", f"{stats.elapsed:.1f}", f"{stats.rate:,.1f}")
    console.print(table)
    if stats.errors:
        console.print("errors: " + ", ".join(f"{code} x{n}" for code, n in sorted(stats.errors.items())))
    if interrupted:
        console.print(f"interrupted: {stats.pending:,} records scheduled but not sent")
    if args.json:
        print(json.dumps(stats.summary()))
    return 1 if stats.failed or interrupted else 0


def _check_contracts(args: argparse.Namespace) -> int:
    for name, contract in contracts.load_all().items():
        print(f"{name}: {contract.kind}, {len(contract.columns)} columns, required {contract.required_columns}")
    return 0


def _check_dashboards(args: argparse.Namespace) -> int:
    from lake.dashboards import spec

    directory = args.dir or spec.default_directory()
    problems = spec.check_all(directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    for name in spec.names(directory):
        d = spec.load(name, directory)
        print(f"{name}: ok ({len(d.datasets)} datasets, {len(d.filters)} filters, {len(d.visuals)} visuals)")
    return 0


def _contracts_dqdl(args: argparse.Namespace) -> int:
    from lake import dqdl

    lay = layout.Layout(settings.get(), contracts.load(args.dataset))
    for table, text in dqdl.rulesets(lay).items():
        database, name = next(t for t in lay.gold_catalog_tables if t[1] == table)
        print(f"# {lay.dq_ruleset(table)}: {database}.{name}")
        print(text)
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``lake`` (sub-commands as in the module docstring)."""
    p = argparse.ArgumentParser(prog="lake", description="The data lake's command line.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens to each day")
    sub = p.add_subparsers(dest="command", required=True)

    src = sub.add_parser("source", help="play the source data into the lake").add_subparsers(dest="action",
                                                                                            required=True)
    rp = src.add_parser("replay", help="play days of a fact dataset into bronze as zipped CSV + manifest")
    rp.add_argument("--dataset", default="flights")
    rp.add_argument("--start", type=_day, required=True, help="first source day, YYYY-MM-DD")
    rp.add_argument("--end", type=_day, required=True, help="last source day (inclusive), YYYY-MM-DD")
    rp.add_argument("--shift-to", type=_day, help="the date the first day becomes (later days follow)")
    rp.add_argument("--scale", type=float, help="TPC-H scale factor of a tpchgen-cli dataset such as sales "
                    "(default LAKE_TPCH_SCALE, 1)")
    rp.add_argument("--bucket", help="bronze bucket (default: the settings' LAKE_BRONZE_BUCKET)")
    rp.add_argument("--endpoint-url", help="S3 endpoint (default $AWS_ENDPOINT_URL)")
    rp.add_argument("--json", action="store_true", help="print the manifests as JSON")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.set_defaults(func=_replay)
    ld = src.add_parser("load-dimensions", help="load dimension tables as Parquet reference data")
    ld.add_argument("--dataset", action="append", help="only this dimension, or a fact's dimensions (repeatable)")
    ld.add_argument("--scale", type=float,
                    help="TPC-H scale factor of the tpchgen-cli dimensions (default LAKE_TPCH_SCALE, 1)")
    ld.add_argument("--bucket", help="bucket (default: the settings' LAKE_SILVER_BUCKET)")
    ld.add_argument("--endpoint-url", help="S3 endpoint (default $AWS_ENDPOINT_URL)")
    ld.set_defaults(func=_load_dimensions)

    build = sub.add_parser("build", help="build deployment artifacts").add_subparsers(dest="artifact", required=True)
    bl = build.add_parser("lambda", help="the extractor's reproducible zip")
    bl.add_argument("--out", type=Path, default=Path("dist/extractor.zip"))
    bl.set_defaults(func=_build_lambda)

    pk = sub.add_parser("package", help="package the lake for a runtime").add_subparsers(dest="target", required=True)
    pm = pk.add_parser("mwaa", help="the DAGs folder (DAGs, lake, include), plugins.zip, requirements.txt and "
                       "startup.sh for Amazon MWAA (docs/deploy-mwaa.md)")
    pm.add_argument("--out", type=Path, default=Path("dist/mwaa"))
    pm.add_argument("--airflow-version", default=None,
                    help="the environment's Apache Airflow version (MWAA's Airflow 3 versions; default the newest)")
    pm.add_argument("--bucket", default="<mwaa-bucket>", help="the environment's S3 bucket, for the printed commands")
    pm.add_argument("--environment", default="<environment>", help="the environment's name, for the printed commands")
    pm.set_defaults(func=_package_mwaa)

    pv = sub.add_parser("provision", help="create or update every AWS resource of the lake (idempotent)")
    pv.add_argument("--endpoint-url", help="AWS endpoint (default $AWS_ENDPOINT_URL; unset: AWS itself)")
    pv.add_argument("--step", action="append", help="only this step (repeatable): roles, buckets, artifacts, "
                    "lambda, glue_job, workgroup, catalog, crawlers, dq_rulesets, notifications, alarms")
    pv.add_argument("--inbox", action=argparse.BooleanOptionalAction, default=None,
                    help="subscribe an SQS queue to the topic (default: only with an endpoint, i.e. localaws)")
    pv.set_defaults(func=_provision)

    dm = sub.add_parser("demo", help="run the whole pipeline locally: localaws + Airflow, provision, replay, "
                        "backfill, results")
    dm.add_argument("--dataset", default="flights", help="the fact dataset to replay and backfill: flights "
                    "(default) or sales (a daily dataset, LAKE_DAILY_DATASETS)")
    dm.add_argument("--start", type=_day, help="first day (default 2013-01-01; sales 1995-03-01)")
    dm.add_argument("--end", type=_day, help="last day (default 2013-01-07; sales 1995-03-07)")
    dm.add_argument("--no-ui", action="store_true", help="stop everything when done (also with CI=true); "
                    "exit 1 if any run failed")
    dm.add_argument("--stop", action="store_true", help="stop the localaws and Airflow the demo started")
    dm.add_argument("--port", type=int, default=8080, help="Airflow UI/API port (default 8080)")
    dm.add_argument("--localaws-port", type=int, default=4566, help="localaws port (default 4566)")
    dm.set_defaults(func=_demo)

    st = sub.add_parser("stream", help="streaming ingestion").add_subparsers(dest="action", required=True)
    ss = st.add_parser("send", help="send records to a Firehose delivery stream, as the Kinesis Data Generator",
                       description="Replay a day of a stream dataset as events in event-time order, or render a "
                       "KDG record template, and send the records (one JSON line each) with PutRecordBatch, "
                       "retrying failed records; prints sent / failed / retried / duplicated / late counts. "
                       "Exit 1 when records failed. See lake/stream/send.py.")
    ss.add_argument("--dataset", help="a stream dataset (contract kind stream), e.g. flight_events")
    ss.add_argument("--day", type=_day, help="the source day to replay, YYYY-MM-DD (with --dataset)")
    ss.add_argument("--template", type=Path, help="a KDG record template file (one record per render)")
    ss.add_argument("--rate", type=float, default=100.0, help="records per second (default 100, as the KDG)")
    ss.add_argument("--speedup", type=float, help="event seconds per second: pace events by their event time, "
                    "N times faster (capped by --rate)")
    ss.add_argument("--count", type=int, help="send at most N records (duplicates come on top)")
    ss.add_argument("--duration", type=float, help="stop generating after S seconds")
    ss.add_argument("--duplicates", type=float, default=0.0, help="fraction of records sent twice (same event_id)")
    ss.add_argument("--late", type=float, default=0.0, help="fraction of records held back --late-delay seconds")
    ss.add_argument("--late-delay", type=float, default=60.0, help="seconds a late record is held back (default 60)")
    ss.add_argument("--seed", type=int, help="seed of the duplicate/late draws and of the template's values")
    ss.add_argument("--stream", help="delivery stream (default: the dataset's, lake.layout: lake-flight-events)")
    ss.add_argument("--endpoint-url", help="Firehose endpoint (default $AWS_ENDPOINT_URL)")
    ss.add_argument("--json", action="store_true", help="print the final counts as JSON on stdout")
    ss.add_argument("--quiet", action="store_true", help="no progress bar")
    ss.set_defaults(func=_stream_send)

    ct = sub.add_parser("contracts", help="dataset contracts").add_subparsers(dest="action", required=True)
    ck = ct.add_parser("check", help="load and check every contract")
    ck.set_defaults(func=_check_contracts)
    dq = ct.add_parser("dqdl", help="print the Glue Data Quality rulesets (DQDL) generated from a fact's contract",
                       description="Print one DQDL ruleset per gold table of DATASET, each after a line "
                       "'# <ruleset name>: <gold database>.<table>' (the names lake provision gives them). "
                       "Rules: RowCount, ColumnExists, IsComplete, IsPrimaryKey, ColumnValues bounds and "
                       "allowed values, all from the contract (see lake/dqdl.py).")
    dq.add_argument("dataset", help="a fact dataset with gold tables, e.g. flights or sales")
    dq.set_defaults(func=_contracts_dqdl)

    db = sub.add_parser("dashboards", help="dashboards as code (include/dashboards)").add_subparsers(
        dest="action", required=True)
    dc = db.add_parser("check", help="check every dashboard file; problems as FILE:LINE: FIELD: MESSAGE (exit 1)")
    dc.add_argument("--dir", type=Path, help="the dashboards' folder (default include/dashboards)")
    dc.set_defaults(func=_check_dashboards)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``lake`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return args.func(args)
    except (contracts.ContractError, ValueError, RuntimeError, BotoCoreError, ClientError) as exc:
        print(f"lake: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
