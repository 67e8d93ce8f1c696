"""``python -m conformance.etsi``: run the ETSI suite against this broker, ratchet, report.

    python -m conformance.etsi run [--out DIR] [--port P] [robot paths or options ...]
    python -m conformance.etsi check DIR/summary.json [--partial]
    python -m conformance.etsi update DIR/summary.json
    python -m conformance.etsi report DIR/summary.json
    python -m conformance.etsi ci [--out DIR]

``run`` starts this broker on its embedded store (a fresh SQLite file) on
127.0.0.1, runs ``../shared/etsi/run.sh`` against it and stops it.  ``ci`` runs
the whole suite, runs the listed tests that failed once more (a test that
depends on timing may fail once on a loaded machine), and exits 1 when a test of
``conformance/etsi-passing.txt`` failed twice or did not run.  The suite's own
ports (8085-8087, 8180, 1883) come from the ``ETSI_*`` variables of its README.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from conformance.etsi.ratchet import (
    Outcome,
    compare,
    load_passing,
    load_summary,
    merge_passing,
    rerun_outcome,
)
from conformance.etsi.report import purposes_of, render_report, write_report
from conformance.process import BrokerProcess
from ngsi_ld.jsonld.core import core_context_url

ROOT = Path(__file__).resolve().parents[2]
PASSING = ROOT / "conformance" / "etsi-passing.txt"
REPORT = ROOT / "docs" / "conformance.md"


def etsi_dir() -> Path:
    return Path(os.environ.get("NGSI_LD_ETSI_DIR", ROOT.parent / "shared" / "etsi")).resolve()


def run_suite(out: Path, robot_args: list[str], *, port: int, store: str | None,
              core: str, broker_args: list[str]) -> Path:
    """Start the broker, run the suite (or part of it) into ``out``, stop the broker."""
    out.mkdir(parents=True, exist_ok=True)
    suite = etsi_dir()
    with tempfile.TemporaryDirectory(prefix="etsi-broker-") as tmp:
        broker = BrokerProcess(
            store or f"sqlite:///{tmp}/broker.db", port=port, log=str(out / "broker.log"),
            extra=["--core-context", core, *broker_args],
        )
        with broker:
            env = {**os.environ, "ETSI_CORE_CONTEXT": core_context_url(core)}
            done = subprocess.run(
                ["bash", str(suite / "run.sh"), str(suite / "suite"),
                 f"{broker.url}/ngsi-ld/v1", str(out), *robot_args],
                env=env, check=False,
            )
    if done.returncode not in (0, 1):
        raise SystemExit(f"run.sh failed with exit status {done.returncode}")
    return out / "summary.json"


def _print(outcome: Outcome) -> None:
    for key in outcome.regressed:
        print(f"REGRESSED {key}")
    for key in outcome.missing:
        print(f"NOT RUN   {key}")
    if outcome.new:
        print(f"{len(outcome.new)} test(s) pass that {PASSING.name} does not list yet "
              "(python -m conformance.etsi update):")
        for key in outcome.new:
            print(f"  new     {key}")


def _rerun_args(keys: list[str]) -> list[str]:
    args: list[str] = []
    files = sorted({key.split("::", 1)[0] for key in keys})
    for key in keys:
        # robot patterns: * ? [ are wildcards; a name holding one matches itself through ?
        name = key.split("::", 1)[1]
        args += ["--test", "".join("?" if c in "[]*" else c for c in name)]
    return args + [f"TP/NGSI-LD/{file}" for file in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.etsi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "ci"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "etsi-out")
        cmd.add_argument("--port", type=int, default=int(os.environ.get("ETSI_BROKER_PORT",
                                                                         "1026")))
        cmd.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
        cmd.add_argument("--core-context", default="1.8")
        cmd.add_argument("--broker-arg", action="append", default=[],
                         help="an extra command-line argument for the broker")
    sub.choices["run"].add_argument("robot", nargs=argparse.REMAINDER,
                                    help="test paths and robot options (default: every test)")
    for name in ("check", "update", "report"):
        cmd = sub.add_parser(name)
        cmd.add_argument("summary", type=Path)
    sub.choices["check"].add_argument("--partial", action="store_true",
                                      help="the run was part of the suite: no test is missing")
    args = parser.parse_args(argv)

    if args.command == "run":
        written = run_suite(args.out, args.robot, port=args.port, store=args.store,
                            core=args.core_context, broker_args=args.broker_arg)
        _print(compare(load_passing(PASSING), load_summary(written), partial=True))
        return 0
    if args.command == "ci":
        common = {"port": args.port, "store": args.store, "core": args.core_context,
                  "broker_args": args.broker_arg}
        first = compare(load_passing(PASSING), load_summary(run_suite(args.out, [], **common)))
        outcome = first
        if first.regressed:
            print(f"{len(first.regressed)} listed test(s) failed; running them once more")
            again = run_suite(args.out / "rerun", _rerun_args(first.regressed), **common)
            outcome = rerun_outcome(first, load_summary(again))
        _print(outcome)
        print("ETSI ratchet: " + ("ok" if outcome.ok else "FAILED"))
        return 0 if outcome.ok else 1
    summary = load_summary(args.summary)
    if args.command == "check":
        outcome = compare(load_passing(PASSING), summary, partial=args.partial)
        _print(outcome)
        return 0 if outcome.ok else 1
    if args.command == "update":
        PASSING.write_text(merge_passing(load_passing(PASSING), summary), encoding="utf-8")
        print(f"{PASSING}: {len(load_passing(PASSING))} tests")
        return 0
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    write_report(REPORT, render_report(summary, commit=commit or "?",
                                       purposes=purposes_of(etsi_dir() / "suite")))
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
