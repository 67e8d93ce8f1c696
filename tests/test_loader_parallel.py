"""ngsi-ld-broker load with worker processes (--jobs): the same store, reports and resume
points as a load done in one process, for every input kind; clean interruption."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.loader import command
from broker.loader.command import main
from broker.loader.pipeline import WorkerPool
from broker.loader.sources import csv_text
from broker.smartdatamodels import DIRECTORY, context_url
from ngsi_ld.query import EntityQuery
from ngsi_ld.temporal import TemporalQuery
from storage import SqliteStore, open_store
from storage.sqlite import store as sqlite_store

STAMPS = {"createdAt", "modifiedAt"}
#: a progress bar that shows entities written: "| 800/100000 ["
WRITTEN = re.compile(rb"\| *[1-9][0-9]*/[0-9]+ \[")

#: every batch of these loads to the workers, however small the file
pytestmark = pytest.mark.usefixtures("started_workers")


def light(number: int, state: str = "on") -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:{number}", "type": "Streetlight",
            "powerState": {"type": "Property", "value": state},
            "status": {"type": "Property", "value": "ok"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [114.1, 22.3]}},
            "@context": context_url("Streetlight")}


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--no-progress", *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _unstamped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unstamped(v) for k, v in value.items() if k not in STAMPS}
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    return value


def contents(db: Path) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    """The entities stored (without their timestamps) and their history instances."""

    async def read() -> tuple[dict[str, Any], dict[str, list[bytes]]]:
        store = open_store(f"sqlite:{db}")
        await store.open()
        try:
            entities, _ = await store.query_entities("", EntityQuery())
            assert store.history is not None
            ids = [r.entity_id for r in await store.history.temporal_entities("")]
            found = await store.history.read_history(
                "", ids, None, TemporalQuery(timeproperty="modifiedAt"))
            history = {entity_id: sorted(orjson.dumps([i.attribute, i.value, i.dataset_id])
                                         for i in instances)
                       for entity_id, instances in found.items()}
            return {e["id"]: _unstamped(e) for e in entities}, history
        finally:
            await store.close()

    return asyncio.run(read())


def _kind_files(tmp: Path) -> dict[str, list[str]]:
    """One file of each input kind, 9 records each with bad ones among them: the
    arguments that load it."""
    lights: list[Any] = [light(n) for n in range(1, 10)]
    lights[3] = "not an entity"
    lights[6] = {"id": "no-uri", "type": "Streetlight"}
    jsonl = tmp / "lights.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lights[:8]) + b"{broken\n")
    array = tmp / "lights.json"
    array.write_bytes(orjson.dumps(lights))
    features: list[Any] = [
        {"type": "Feature", "id": f"urn:ngsi-ld:Kiosk:{n}",
         "geometry": {"type": "Point", "coordinates": [114.1, 22.2 + n / 100]},
         "properties": {"name": f"kiosk {n}", "open": n % 2 == 0}} for n in range(1, 10)]
    features[4] = {"type": "Feature", "geometry": None, "properties": {"name": "no id"}}
    geojson = tmp / "kiosks.geojson"
    geojson.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    mapping = tmp / "map.json"
    mapping.write_bytes(orjson.dumps({
        "type": "AirQualityObserved", "id": "urn:ngsi-ld:AirQualityObserved:{station}",
        "@context": context_url("AirQualityObserved"),
        "location": {"longitude": "lon", "latitude": "lat"},
        "attributes": {"no2": {"column": "no2", "datatype": "number"}}}))
    rows = [[f"s{n}", "114.1", "22.3", str(n)] for n in range(1, 10)]
    rows[2][3] = "many"
    rows[5] = ["s6", "114.1", "22.3", "1", "extra"]
    csv = tmp / "air.csv"
    csv.write_text(csv_text(["station", "lon", "lat", "no2"], rows))
    return {"jsonl": [str(jsonl)], "json": [str(array)],
            "geojson": [str(geojson), "--type", "Kiosk"],
            "csv": [str(csv), "--mapping", str(mapping)]}


@pytest.mark.parametrize("kind, refused", [("jsonl", 3), ("json", 2), ("geojson", 1),
                                           ("csv", 2)])
def test_workers_load_every_kind_as_one_process_does(tmp_path: Path, kind: str,
                                                    refused: int) -> None:
    args = _kind_files(tmp_path)[kind]
    results = {}
    for jobs in ("1", "3"):
        db = tmp_path / f"jobs{jobs}.db"
        rejects = tmp_path / f"rejects{jobs}.jsonl"
        code, out, err = run(*args, "--store", f"sqlite:{db}", "--batch-size", "2",
                             "--jobs", jobs, "--rejects", str(rejects),
                             "--state-dir", str(tmp_path / "state"))
        assert code == 1, err
        results[jobs] = (out.split(" in ")[0], out.split("; ", 1)[1], err,
                         rejects.read_bytes(), contents(db))
    one, workers = results["1"], results["3"]
    assert workers == one
    summary, rest, err, rejects, (entities, _) = workers
    loaded = 9 - refused
    assert summary == f"loaded {loaded} entities from 1 file(s)"
    assert rest.startswith(f"rejected {refused}")
    numbers = [orjson.loads(line)["record"] for line in rejects.splitlines()]
    assert numbers == sorted(numbers) and len(numbers) == refused  # reported in file order
    lines = err.splitlines()
    assert len(lines) == refused and all(": rejected: " in line for line in lines)
    assert len(entities) == loaded


def test_schema_violations_and_existing_entities_with_workers(tmp_path: Path) -> None:
    source = tmp_path / "lights.jsonl"
    items = [light(n, "dazzling" if n in (3, 8) else "on") for n in range(1, 11)]
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in items))
    again = tmp_path / "again.jsonl"  # the same entities once more: upserts of existing ones
    again.write_bytes(b"".join(orjson.dumps(light(n, "off" if n % 2 else "dazzling")) + b"\n"
                               for n in range(1, 11)))
    results = {}
    for jobs in ("1", "2"):
        db = tmp_path / f"jobs{jobs}.db"
        for mode in ([], ["--update"]):
            code, _, err = run(str(source), str(again), *mode, "--store", f"sqlite:{db}",
                               "--batch-size", "3", "--jobs", jobs, "--model-schemas",
                               str(DIRECTORY), "--state-dir", str(tmp_path / "state"))
            assert code == 1
            results[jobs, bool(mode)] = err, contents(db)
    assert results["2", False] == results["1", False]
    assert results["2", True] == results["1", True]
    err, (entities, history) = results["2", True]
    assert "lights.jsonl:3 urn:ngsi-ld:Streetlight:3: rejected:" in err
    assert "again.jsonl:2 urn:ngsi-ld:Streetlight:2: rejected:" in err and "powerState" in err
    power = "https://smartdatamodels.org/dataModel.Streetlighting/powerState"
    value = {n: entities[f"urn:ngsi-ld:Streetlight:{n}"]["attrs"][power][0]["value"]
             for n in (1, 2, 3)}
    assert value == {1: "off", 2: "on", 3: "off"}  # 2: its second version was refused
    assert len(history["urn:ngsi-ld:Streetlight:1"]) > len(history["urn:ngsi-ld:Streetlight:2"])


def _interrupted_after(batches: int, argv: list[str]) -> tuple[int, str]:
    """Run the load, stopping it (as Ctrl-C does) once ``batches`` batches are settled
    (the load then settles the batch it handed to the store before, and stops)."""
    original = command.Loader._settle
    settled = 0

    async def settle_then_stop(self: Any, *args: Any) -> None:
        nonlocal settled
        await original(self, *args)
        settled += 1
        if settled == batches:
            raise KeyboardInterrupt

    command.Loader._settle = settle_then_stop  # type: ignore[method-assign]
    try:
        code, out, _ = run(*argv)
    finally:
        command.Loader._settle = original  # type: ignore[method-assign]
    return code, out


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(13, 30), batch=st.integers(1, 4), stop=st.integers(1, 3),
       jobs=st.sampled_from(["2", "3"]))
def test_an_interrupted_parallel_load_resumes_to_the_same_store(
        tmp_path_factory: pytest.TempPathFactory, count: int, batch: int, stop: int,
        jobs: str) -> None:
    tmp = tmp_path_factory.mktemp("resume")
    source = tmp / "lights.jsonl"
    lines = [orjson.dumps(light(n)) for n in range(count)]
    lines[count // 2] = b"[]"  # a rejected record somewhere in the middle
    source.write_bytes(b"\n".join(lines) + b"\n")
    common = [str(source), "--batch-size", str(batch), "--jobs", jobs]
    code, _, err = run(*common, "--store", f"sqlite:{tmp / 'whole.db'}",
                       "--state-dir", str(tmp / "s1"))
    assert code == 1, err
    resumed = ["--store", f"sqlite:{tmp / 'resumed.db'}", "--state-dir", str(tmp / "s2")]
    code, out = _interrupted_after(stop, [*common, *resumed])
    assert code == 2 and "interrupted: run the same command to resume" in out
    assert list((tmp / "s2").iterdir())  # a resume point was left
    code, _, err = run(*common, *resumed)
    # stop batches of batch records settled, and the one handed to the store before the
    # last of them was settled: written too, so counted (the count is larger than stop)
    written = min((stop + 1) * batch, count)
    assert code == (1 if count // 2 + 1 > written else 0), err  # record count//2+1 is bad
    assert f"resuming after record {written:,}" in err
    assert contents(tmp / "resumed.db") == contents(tmp / "whole.db")
    assert not list((tmp / "s2").iterdir())


def test_interrupting_a_parallel_load_stops_its_workers(tmp_path: Path) -> None:
    started: list[WorkerPool] = []
    original = WorkerPool.start

    async def start(self: WorkerPool) -> None:
        await original(self)
        started.append(self)

    source = tmp_path / "lights.jsonl"
    source.write_bytes(b"".join(orjson.dumps(light(n)) + b"\n" for n in range(40)))
    WorkerPool.start = start  # type: ignore[method-assign]
    try:
        code, out = _interrupted_after(2, [str(source), "--store", f"sqlite:{tmp_path / 'b.db'}",
                                           "--batch-size", "2", "--jobs", "3",
                                           "--state-dir", str(tmp_path / "state")])
    finally:
        WorkerPool.start = original  # type: ignore[method-assign]
    # the batch handed to the store before the second was settled is written and counted
    assert code == 2 and "loaded 6 entities" in out
    (pool,) = started
    assert pool.processes == 2 and not pool._workers  # closed: every worker has exited
    entities, _ = contents(tmp_path / "b.db")
    assert len(entities) == 6


def test_a_worker_that_dies_stops_the_load_resumably(tmp_path: Path) -> None:
    source = tmp_path / "lights.jsonl"
    source.write_bytes(b"".join(orjson.dumps(light(n)) + b"\n" for n in range(30)))
    original = WorkerPool.submit
    submitted = 0

    def submit_then_kill(self: WorkerPool, *args: Any) -> Any:
        nonlocal submitted
        submitted += 1
        if submitted == 4:
            for worker in self._workers:
                worker.process.kill()
        return original(self, *args)

    state = tmp_path / "state"
    argv = [str(source), "--store", f"sqlite:{tmp_path / 'b.db'}", "--batch-size", "3",
            "--jobs", "2", "--state-dir", str(state)]
    WorkerPool.submit = submit_then_kill  # type: ignore[method-assign]
    try:
        code, _, err = run(*argv)
    finally:
        WorkerPool.submit = original  # type: ignore[method-assign]
    assert code == 2 and "a worker process stopped" in err
    code, _, err = run(*argv)
    assert code == 0 and "resuming after record" in err
    assert len(contents(tmp_path / "b.db")[0]) == 30


def test_a_batch_after_one_whose_write_failed_is_not_written_and_resumes_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch 4 (records 10-12) fails in the store once batch 5 is queued behind it on
    the store's writer: batch 5 is not written either, and the resumed load writes each
    batch once (the history of every entity has each instance once)."""
    source = tmp_path / "lights.jsonl"
    source.write_bytes(b"".join(orjson.dumps(light(n)) + b"\n" for n in range(30)))
    ids = [light(n)["id"] for n in range(30)]
    common = [str(source), "--batch-size", "3", "--jobs", "2"]
    code, _, err = run(*common, "--store", f"sqlite:{tmp_path / 'whole.db'}",
                       "--state-dir", str(tmp_path / "s1"))
    assert code == 0, err
    queued = threading.Event()  # batch 5's write is queued on the writer
    writes: dict[str, asyncio.Future[Any]] = {}  # by the first id of the batch
    modify_prepared, write_all = SqliteStore.modify_prepared, sqlite_store.write_all

    async def queue_then_tell(self: SqliteStore, tenant: str, mutations: Any,
                              *args: Any, **kwargs: Any) -> Any:
        first = mutations[0][0]
        if first == ids[9]:  # batch 4 reaches the writer once batch 3 is committed:
            await writes[ids[6]]  # its transaction then holds no other batch
            return await modify_prepared(self, tenant, mutations, *args, **kwargs)
        write = writes[first] = asyncio.ensure_future(
            modify_prepared(self, tenant, mutations, *args, **kwargs))
        await asyncio.sleep(0)  # its first step queues its transaction
        if first == ids[12]:
            queued.set()
        return await write

    def fail_batch_4(conn: Any, tenant: str, items: Any, *args: Any) -> Any:
        if items[0][0] == ids[9]:  # on the writer thread, as batch 4's write starts
            assert queued.wait(30)
            raise sqlite3.OperationalError("disk I/O error")
        return write_all(conn, tenant, items, *args)

    monkeypatch.setattr(SqliteStore, "modify_prepared", queue_then_tell)
    monkeypatch.setattr(sqlite_store, "write_all", fail_batch_4)
    argv = [*common, "--store", f"sqlite:{tmp_path / 'b.db'}",
            "--state-dir", str(tmp_path / "s2")]
    code, out, err = run(*argv)
    assert code == 2 and "stopped: the SQLite store failed: disk I/O error" in err
    assert "loaded 9 entities" in out
    entities, _ = contents(tmp_path / "b.db")
    assert sorted(entities) == sorted(ids[:9])  # nothing of batch 5
    monkeypatch.undo()
    code, _, err = run(*argv)
    assert code == 0 and "resuming after record 9" in err
    assert contents(tmp_path / "b.db") == contents(tmp_path / "whole.db")


def test_ctrl_c_stops_a_parallel_load_cleanly(tmp_path: Path) -> None:
    """A real SIGINT to the command: summary, resume point, no worker left behind."""
    source = tmp_path / "lights.jsonl"
    # long enough (seconds even on an idle machine) that the load cannot finish before
    # the signal reaches it on a busy one
    source.write_bytes(b"".join(orjson.dumps(light(n)) + b"\n" for n in range(100_000)))
    argv = [sys.executable, "-c", "import sys; from broker.loader.command import main; "
            "sys.exit(main(sys.argv[1:]))", str(source), "--store",
            f"sqlite:{tmp_path / 'b.db'}", "--batch-size", "200", "--jobs", "2",
            "--state-dir", str(tmp_path / "state")]
    # the command starts as a shell starts it: Ctrl-C's default action, not blocked.  The
    # test process may differ (an ignored or blocked SIGINT is inherited across exec, and
    # Python then leaves it so): in CI the load ignored the signal and ran to its end
    def as_from_a_shell() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, preexec_fn=as_from_a_shell) as load:
        assert load.stderr is not None
        # wait for the progress bar to show written entities, then Ctrl-C (the whole
        # group); the bar redraws at most every 0.1 s, so its first count can be any
        # number of batches
        seen = b""
        while not WRITTEN.search(seen) and load.poll() is None:
            seen += load.stderr.read1(4096)
        os.killpg(load.pid, signal.SIGINT)
        out, _ = load.communicate(timeout=120)
    assert load.returncode == 2, out
    assert b"interrupted: run the same command to resume" in out
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-g", str(load.pid)], capture_output=True)
    assert leftover.stdout == b""  # no worker process outlived the load
    assert list((tmp_path / "state").iterdir())


def test_workers_forked_or_spawned_load_the_same_store(tmp_path: Path) -> None:
    """A load's workers are forks of it where it runs no other thread (they start at
    once), else new interpreters (``python -m broker.loader.worker``): the same store."""
    source = tmp_path / "lights.jsonl"
    source.write_bytes(b"".join(orjson.dumps(light(n)) + b"\n" for n in range(40)))
    pools: list[WorkerPool] = []
    original = WorkerPool.start

    async def start(self: WorkerPool) -> None:
        await original(self)
        pools.append(self)

    results, alone = {}, []
    WorkerPool.start = start  # type: ignore[method-assign]
    try:
        for threaded in (False, True):
            stop = threading.Event()
            other = threading.Thread(target=stop.wait)  # e.g. a program embedding the load
            if threaded:
                other.start()
            alone.append(threading.active_count() == 1)
            try:
                db = tmp_path / f"threaded-{threaded}.db"
                code, out, err = run(str(source), "--store", f"sqlite:{db}", "--batch-size",
                                     "4", "--jobs", "3", "--state-dir", str(tmp_path / "s"))
            finally:
                stop.set()
                if threaded:
                    other.join()
            assert code == 0, err
            results[threaded] = out.split(" in ")[0], contents(db)
    finally:
        WorkerPool.start = original  # type: ignore[method-assign]
    assert [pool.forked for pool in pools] == alone and alone[1] is False
    assert results[True] == results[False]
    assert results[True][0] == "loaded 40 entities from 1 file(s)"


def test_a_spawned_worker_does_not_load_the_command() -> None:
    """``python -m broker.loader.worker`` imports what preparing batches needs, not the
    command (its progress bar, its arguments): it starts sooner."""
    code = ("import sys, broker.loader.worker; "
            "print(sorted(m for m in sys.modules if m in ('broker.loader.command', 'tqdm')))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "[]"
