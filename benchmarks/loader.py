"""How fast ``ngsi-ld-broker load`` writes into the embedded store (target: 10,000 entities/s).

    python -m benchmarks.loader                 # 50,000 entities
    python -m benchmarks.loader --count 10000 --model-schemas
    python -m benchmarks.loader --shape sdm --temporal off

Writes a JSON-lines file, either of the demo's entity mix (``--shape demo``:
Streetlight, AirQualityObserved, WeatherObserved, TrafficFlowObserved, 6 to 15
attributes each, with their Smart Data Models @context) or of the benchmark
suite's 3-attribute entity (``--shape small``), then loads it with the
command's own code into a fresh SQLite store and prints entities per second of
wall time (with the load average: the machine may be shared) and the CPU
seconds of each process: the writer (this one: its event loop and the store's
threads) and each worker process preparing batches (``--jobs``), with entities
per CPU second of the writer (steadier on a shared machine than the wall clock).
The writer prepares batches itself until a worker has started (forked workers at
once; spawned ones, where the writer already runs a thread, take a second or so):
how many it did is printed, since they add to its CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.suite.scenarios import small_entity
from broker.demo import HONG_KONG, lampposts
from broker.demo.dataset import lamppost_entities
from broker.loader import StoreSink
from broker.loader.command import (
    DEFAULT_JOBS,
    Loader,
    build_parser,
    make_sink,
    sources_of,
    tune_gc,
)
from broker.smartdatamodels import DIRECTORY

#: the Smart Data Models examples ``--shape sdm`` repeats (normalized, 21 and 26 attributes)
SDM_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "smart-data-models"
SDM_TYPES = ("Streetlight", "AirQualityObserved")
#: ``--shape csv``: 8 columns, of which 6 attributes, the id and the location
CSV_MAPPING = {
    "type": "AirQualityObserved",
    "id": "urn:ngsi-ld:AirQualityObserved:bench:{station}",
    "@context": "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment"
                "/master/context.jsonld",
    "location": {"longitude": "lon", "latitude": "lat"},
    "attributes": {
        "dateObserved": {"column": "time", "datatype": "datetime"},
        "no2": {"column": "no2", "datatype": "number", "unitCode": "GQ"},
        "pm25": {"column": "pm25", "datatype": "number", "unitCode": "GQ"},
        "temperature": {"column": "temp", "datatype": "number", "unitCode": "CEL"},
        "airQualityLevel": {"column": "level"},
        "refDevice": {"column": "station", "kind": "Relationship",
                      "template": "urn:ngsi-ld:Device:bench:{station}"},
    },
}


def write_sdm(path: Path, count: int, directory: Path = SDM_EXAMPLES) -> None:
    """``count`` entities: the normalized Smart Data Models examples, ids varied."""
    examples = [orjson.loads((directory / name / "example-normalized.jsonld").read_bytes())
                for name in SDM_TYPES]
    with path.open("wb") as out:
        for number in range(count):
            entity = dict(examples[number % len(examples)])
            entity["id"] = f"{entity['id']}:{number}"
            out.write(orjson.dumps(entity) + b"\n")


def write_csv(path: Path, count: int) -> None:
    """``count`` rows of ``CSV_MAPPING``'s 8 columns (its mapping beside, ``.json``)."""
    path.with_suffix(".json").write_bytes(orjson.dumps(CSV_MAPPING))
    with path.open("w") as out:
        out.write("station,lon,lat,time,no2,pm25,temp,level\n")
        for n in range(count):
            out.write(f"s{n},{114 + n % 100 / 1000},{22.3 + n % 77 / 1000},"
                      f"2026-12-04T{n % 24:02}:00:00Z,{n % 90 + 0.5},{n % 40 + 0.25},"
                      f"{n % 30 + 0.1},{('good', 'moderate', 'poor')[n % 3]}\n")


def write_file(path: Path, count: int, shape: str = "demo",
               examples: Path = SDM_EXAMPLES) -> None:
    when = datetime(2026, 12, 4, 12, tzinfo=UTC)
    if shape == "sdm":
        write_sdm(path, count, examples)
        return
    if shape == "csv":
        write_csv(path, count)
        return
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
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the load's --batch-size (default: the command's)")
    parser.add_argument("--shape", choices=("demo", "small", "sdm", "csv"), default="demo",
                        help="demo: the demo's mix; small: 3 attributes; sdm: the Smart Data "
                        "Models Streetlight and AirQualityObserved examples; csv: 8 columns")
    parser.add_argument("--temporal", choices=("on", "off"), default="on")
    parser.add_argument("--examples", type=Path, default=SDM_EXAMPLES,
                        help="the Smart Data Models examples of --shape sdm "
                        "(default ../shared/data/smart-data-models beside the checkout)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"the load's --jobs (default {DEFAULT_JOBS}: 1 writer + workers)")
    parser.add_argument("--model-schemas", action="store_true",
                        help="check the bundled Smart Data Models schemas while loading")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / ("rows.csv" if args.shape == "csv" else "entities.jsonl")
        write_file(source, args.count, args.shape, args.examples)
        argv = [str(source), "--store", f"sqlite:{tmp}/store/broker.db", "--no-progress",
                "--state-dir", f"{tmp}/state", "--temporal", args.temporal]
        if args.batch_size is not None:
            argv += ["--batch-size", str(args.batch_size)]
        if args.shape == "csv":
            argv += ["--mapping", str(source.with_suffix(".json"))]
        if args.model_schemas:
            argv += ["--model-schemas", str(DIRECTORY)]
        argv += ["--jobs", str(args.jobs)]
        options = build_parser().parse_args(argv)
        sink, target = make_sink(options)
        assert isinstance(sink, StoreSink)
        loader = Loader(sink, target, options, io.StringIO())
        tune_gc()  # as the command's main does
        wall, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(loader.run(sources_of(options)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if summary.rejected or summary.loaded != args.count:
            raise SystemExit(f"the load failed: {summary.text()}")
    loaded, workers = summary.loaded, sorted(sink.worker_cpu.values())
    load_average = os.getloadavg()[0]
    print(f"{loaded:,} entities in {wall:.1f} s: {loaded / wall:,.0f} entities/s (wall, "
          f"load average {load_average:.1f}); writer {cpu:.2f} CPU s = {loaded / cpu:,.0f} "
          f"entities per CPU second; workers "
          + (", ".join(f"{w:.2f}" for w in workers) + " CPU s" if workers else "none")
          + (f" ({sink.before_workers} batches prepared by the writer before a worker "
             "started)" if sink.before_workers else "")
          + f"; {args.shape} entities, temporal {args.temporal}, jobs {args.jobs}"
          + (" with schema checks" if args.model_schemas else ""))


if __name__ == "__main__":
    main()
