"""How fast ``ngsi-ld-broker load`` writes into the embedded store (target: 10,000 entities/s).

    python -m benchmarks.loader                 # 50,000 entities
    python -m benchmarks.loader --count 10000 --model-schemas

Writes a JSON-lines file, either of the demo's entity mix (``--shape demo``:
Streetlight, AirQualityObserved, WeatherObserved, TrafficFlowObserved, 6 to 15
attributes each, with their Smart Data Models @context) or of the benchmark
suite's 3-attribute entity (``--shape small``), then loads it with the
command's own code into a fresh SQLite store and prints entities per second of
wall time and per second of this process's CPU time (steadier on a shared
machine).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.suite.scenarios import small_entity
from broker.demo import HONG_KONG, lampposts
from broker.demo.dataset import lamppost_entities
from broker.loader import main as load
from broker.smartdatamodels import DIRECTORY


def write_file(path: Path, count: int, shape: str = "demo") -> None:
    when = datetime(2026, 12, 4, 12, tzinfo=UTC)
    with path.open("wb") as out:
        if shape == "small":
            for number in range(count):
                out.write(small_entity(f"urn:ngsi-ld:BenchEntity:{number}", "BenchEntity",
                                       str(number % 40)).encode() + b"\n")
            return
        for post in lampposts(HONG_KONG, (count + 3) // 4, seed=1):
            for entity in lamppost_entities(post, 1, when):
                entity["id"] += ":bench"
                out.write(orjson.dumps(entity) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loader")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--shape", choices=("demo", "small"), default="demo")
    parser.add_argument("--model-schemas", action="store_true",
                        help="check the bundled Smart Data Models schemas while loading")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "entities.jsonl"
        write_file(source, args.count, args.shape)
        argv = [str(source), "--store", f"sqlite:{tmp}/store/broker.db", "--no-progress",
                "--batch-size", str(args.batch_size), "--state-dir", f"{tmp}/state"]
        if args.model_schemas:
            argv += ["--model-schemas", str(DIRECTORY)]
        out = io.StringIO()
        wall, cpu = time.perf_counter(), time.process_time()
        code = load(argv, out=out)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        loaded = int(out.getvalue().split("loaded ")[1].split(" ")[0].replace(",", ""))
        if code != 0:
            raise SystemExit(f"the load failed ({code}): {out.getvalue()}")
    print(f"{loaded:,} entities in {wall:.1f} s: {loaded / wall:,.0f} entities/s "
          f"(wall), {loaded / cpu:,.0f} entities per CPU second, {args.shape} entities"
          + (" with schema checks" if args.model_schemas else ""))


if __name__ == "__main__":
    main()
