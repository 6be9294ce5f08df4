"""``localaws`` command: ``serve`` the endpoint, list ``sns messages``.

    localaws serve [--host 127.0.0.1] [--port 4566] [--state-dir .localaws] [--no-durable-writes] [--faults faults.yaml]
                   [--lambda-idle-seconds 600]
                   [--glue-pool-size 2] [--alarm-evaluation-seconds 60]
    localaws sns messages [--topic NAME] [--endpoint http://127.0.0.1:4566] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode


def _serve(args: argparse.Namespace) -> int:
    from localaws.faults import FaultConfigError
    from localaws.persistence import SnapshotError
    from localaws.server import LocalAWS

    try:
        server = LocalAWS(host=args.host, port=args.port, state_dir=args.state_dir,
                          snapshot_interval=args.snapshot_interval, faults=args.faults,
                          durable_writes=args.durable_writes, lambda_idle_seconds=args.lambda_idle_seconds,
                          glue_pool_size=args.glue_pool_size, glue_jvm_options=args.glue_jvm_options,
                          alarm_evaluation_seconds=args.alarm_evaluation_seconds)
    except FaultConfigError as exc:
        print(f"localaws: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except SnapshotError as exc:
        print(f"localaws: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"localaws: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"localaws ready at {server.endpoint_url}", flush=True)
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not done.wait(1.0):
        pass
    server.stop()
    return 0


def _sns_messages(args: argparse.Namespace) -> int:
    query = f"?{urlencode({'topic': args.topic})}" if args.topic else ""
    url = f"{args.endpoint.rstrip('/')}/_localaws/sns/messages{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            messages = json.load(resp)["messages"]
    except urllib.error.URLError as exc:
        print(f"localaws: cannot reach {args.endpoint}: {exc.reason}. Is `localaws serve` running?", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(messages, indent=2))
        return 0
    if not messages:
        print("no messages published" + (f" to topic {args.topic}" if args.topic else ""))
        return 0
    for m in messages:
        print(f"{m['time']}  topic={m['topic']}  subject={m['subject'] or '-'}")
        if m["attributes"]:
            print("  attributes: " + ", ".join(f"{k}={v}" for k, v in m["attributes"].items()))
        for line in str(m["message"]).splitlines() or [""]:
            print(f"  {line}")
        print()
    return 0


def _coverage(args: argparse.Namespace) -> int:
    from localaws import coverage

    text = coverage.render_markdown(coverage.compute())
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localaws", description="An embedded local AWS where compute really runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the AWS APIs on HOST:PORT until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, default=4566, help="TCP port (default 4566; 0 picks a free one)")
    serve.add_argument("--state-dir", default=None,
                       help="directory for state snapshots; state survives restarts (default: none, state is lost)")
    serve.add_argument("--snapshot-interval", type=float, default=30.0,
                       help="seconds between snapshots when state changed (default 30)")
    serve.add_argument("--durable-writes", action=argparse.BooleanOptionalAction, default=True,
                       help="with --state-dir, answer a request that changes state only once a snapshot holding it "
                            "is on disk, so a hard kill loses nothing acknowledged (default: on; --no-durable-writes "
                            "keeps only the periodic snapshots)")
    serve.add_argument("--faults", default=None, metavar="FILE",
                       help="fault injection config, YAML or JSON (default: the file named by $LOCALAWS_FAULTS; "
                            "none: no faults). See docs/localaws.md, 'Fault injection'")
    serve.add_argument("--lambda-idle-seconds", type=float, default=None, metavar="N",
                       help="seconds an idle Lambda execution environment is kept for warm invocations "
                            "(default: $LOCALAWS_LAMBDA_IDLE_SECONDS, else 600; 0: every invocation starts cold)")
    serve.add_argument("--glue-pool-size", type=int, default=None, metavar="N",
                       help="pre-started Glue drivers (Python + JVM + SparkContext) kept for glueetl runs, started "
                            "by the first glueetl CreateJob/StartJobRun (default: $LOCALAWS_GLUE_POOL_SIZE or 2; "
                            "0: off, every run starts its own JVM)")
    serve.add_argument("--glue-jvm-options", default=None, metavar="OPTIONS",
                       help="extra JVM options of glueetl drivers, e.g. '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC' "
                            "for many small runs (default: $LOCALAWS_GLUE_JVM_OPTIONS, else none)")
    serve.add_argument("--alarm-evaluation-seconds", type=float, default=None, metavar="S",
                       help="seconds between evaluations of every CloudWatch metric alarm "
                            "(default: $LOCALAWS_ALARM_EVALUATION_SECONDS, else 60 as AWS)")
    serve.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    sns = sub.add_parser("sns", help="SNS helpers").add_subparsers(dest="sns_command", required=True)
    msgs = sns.add_parser("messages", help="print the messages published so far")
    msgs.add_argument("--topic", help="only this topic (name or ARN)")
    msgs.add_argument("--endpoint", default="http://127.0.0.1:4566", help="localaws endpoint")
    msgs.add_argument("--json", action="store_true", help="print JSON")
    cov = sub.add_parser("coverage", help="print which AWS operations localaws runs, answers, or refuses (501)")
    cov.add_argument("--output", metavar="FILE", help="write the Markdown table to FILE (docs/localaws-coverage.md)")
    args = parser.parse_args(argv)
    if args.command == "coverage":
        return _coverage(args)
    if args.command == "serve":
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for noisy in ("werkzeug", "botocore", "moto"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        return _serve(args)
    return _sns_messages(args)


if __name__ == "__main__":
    sys.exit(main())
