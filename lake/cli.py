"""``lake``: the data lake's command line.

    lake source replay --dataset flights --start 2013-01-01 --end 2013-01-31 [--shift-to YYYY-MM-DD]
                       [--bucket B] [--endpoint-url URL]
    lake source replay --dataset sales --start 1995-03-01 --end 1995-03-07 [--scale 1]
    lake source load-dimensions [--dataset NAME ...] [--scale 1] [--bucket B] [--endpoint-url URL]
    lake build lambda [--out dist/extractor.zip]
    lake provision [--endpoint-url URL] [--step NAME ...] [--inbox | --no-inbox]
    lake demo [--dataset flights|sales] [--start 2013-01-01] [--end 2013-01-07] [--no-ui] | lake demo --stop
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

    pv = sub.add_parser("provision", help="create or update every AWS resource of the lake (idempotent)")
    pv.add_argument("--endpoint-url", help="AWS endpoint (default $AWS_ENDPOINT_URL; unset: AWS itself)")
    pv.add_argument("--step", action="append", help="only this step (repeatable): roles, buckets, artifacts, "
                    "lambda, glue_job, workgroup, catalog, crawlers, dq_rulesets, notifications")
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
