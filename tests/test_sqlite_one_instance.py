"""The history of a PATCH of one attribute written the short way (a
``history_rows.OneInstance`` whose row goes in as it is when the writer's memo knows its
record and series, ``history_batch._quick_row``) stores what the usual way stores: files
written by ``writes.write_all`` from the same transactions of creations, updates of one
or more attributes (datasetIds, observedAt, odd and earlier stamps, types and scope
changed, deletions) hold the same tables, and the writes the same outcomes, as files
written with every history encoded by ``encode_write``; the writer's memo ends the same."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import ResourceNotFound
from ngsi_ld.temporal import recorder_at
from storage.sqlite import history_batch, writes
from storage.sqlite.history_rows import OneInstance
from tests.test_loader_prepared import tables
from tests.test_sqlite_creation_writes import _open, write_transaction

TENANT = "t"
_NOW = st.sampled_from(["2026-12-05T03:00:00.123Z", "2026-12-05T03:00:01.500Z",
                        "2026-12-05T03:00:00Z", "2026-12-05T02:59:59.5Z"])
_STAMP = st.one_of(_NOW, st.sampled_from(["2026-12-05T05:00:00+02:00", "yesterday", ""]))
_NAME = st.sampled_from(["https://x/a", "https://x/a", "https://x/b"])
_IDS = st.sampled_from(["urn:e:1", "urn:e:2"])

_instance = st.fixed_dictionaries(
    {"type": st.sampled_from(["Property", "Property", "Relationship", "Bogus"]),
     "value": st.one_of(st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=2)),
     "createdAt": _NOW},
    optional={"observedAt": _STAMP, "datasetId": st.just("urn:ds:1"),
              "unitCode": st.just("CEL"), "object": st.just("urn:x:1")})


def _created(entity_id: str, now: str, scope: bool) -> Any:
    def mutation(current: Any) -> Any:
        if current is not None:
            return current
        return {"id": entity_id, "type": ["https://x/T"], "createdAt": now,
                "modifiedAt": now, **({"scope": ["/a"]} if scope else {}),
                "attrs": {"https://x/a": [{"type": "Property", "value": 0,
                                           "createdAt": now, "modifiedAt": now}],
                          "https://x/b": [{"type": "Property", "value": "x",
                                           "createdAt": now, "modifiedAt": now}]}}
    return mutation


def _patched(changes: dict[str, Any], stamp: str | None, types: list[str] | None,
             scope: list[str] | None) -> Any:
    """An update: each named attribute set to its instance list (None: deleted)."""
    def mutation(current: Any) -> Any:
        if current is None:
            raise ResourceNotFound("no entity")
        entity = copy.deepcopy(current)
        for name, instances in changes.items():
            if instances is None:
                entity["attrs"].pop(name, None)
            else:
                entity["attrs"][name] = copy.deepcopy(instances)
        if stamp is None:
            entity.pop("modifiedAt", None)
        else:
            entity["modifiedAt"] = stamp
        if types is not None:
            entity["type"] = types
        if scope is not None:
            entity["scope"] = scope
        return entity
    return mutation


def _deleted(current: Any) -> Any:
    return None


@st.composite
def _write(draw: Any, usual: bool = False) -> tuple[str, str, Any]:
    """(entity id, the write's time, its mutation); ``usual``: a PATCH of one attribute."""
    entity_id, now = draw(_IDS), draw(_NOW)
    kind = "patch" if usual else draw(st.sampled_from(
        ["patch"] * 12 + ["patch2", "create", "delete", "odd", "odd"]))
    if kind == "create":
        return entity_id, now, _created(entity_id, now, draw(st.booleans()))
    if kind == "delete":
        return entity_id, now, _deleted
    if kind == "patch":  # the usual PATCH: one attribute, the write's stamp
        inst = {**draw(_instance), "modifiedAt": now}
        return entity_id, now, _patched({draw(_NAME): [inst]}, now, None, None)
    if kind == "patch2":
        return entity_id, now, _patched(
            {"https://x/a": [{**draw(_instance), "modifiedAt": now}],
             "https://x/b": draw(st.one_of(st.none(), st.just([])))}, now, None, None)
    return entity_id, now, _patched(  # odd stamps, types, scope, a deletion
        {draw(_NAME): draw(st.one_of(st.none(), st.lists(
            st.builds(lambda i, m: {**i, "modifiedAt": m}, _instance, _STAMP),
            max_size=2)))},
        draw(st.one_of(st.none(), _STAMP)),
        draw(st.one_of(st.none(), st.just(["https://x/T", "https://x/U"]))),
        draw(st.one_of(st.none(), st.just(["/b"]))))


def _run(path: Path, transactions: list[list[tuple[str, str, Any]]],
         forget: list[bool]) -> tuple[list[Any], dict[str, Any]]:
    """Each list of writes in its transaction, as the writer writes single writes
    (``forget``: the memo forgotten before it, as when another connection committed);
    what each write gave, and what the memo holds at the end."""
    conn, history = _open(path)
    outcomes: list[Any] = []
    try:
        for writes_, drop in zip(transactions, forget, strict=True):
            if drop:
                history.memo.forget()
            items = [(i, m, recorder_at(now)) for i, now, m in writes_]
            results = write_transaction(conn, history, items)
            outcomes.extend(type(value).__name__ if not ok else value.after
                            for ok, value in results)
        memo = history.memo
        kept = {"records": dict(memo._records), "series": copy.deepcopy(memo._series),
                "reserved": memo.reserved}
    finally:
        conn.close()
    return outcomes, kept


def _no_one_instance(*args: Any) -> None:
    return None


_transactions = st.one_of(
    st.lists(st.lists(_write(), min_size=1, max_size=2), min_size=3, max_size=12),
    st.lists(st.lists(_write(usual=True), min_size=1, max_size=1), min_size=3, max_size=12))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_transactions, st.data())
def test_a_file_of_patches_written_the_short_way_is_the_one_written_the_usual_way(
        transactions: list[list[tuple[str, str, Any]]], data: st.DataObject) -> None:
    now = "2026-12-05T03:00:00.000Z"
    transactions = [[(i, now, _created(i, now, data.draw(st.booleans())))
                     for i in ("urn:e:1", "urn:e:2")], *transactions]
    forget = data.draw(st.lists(st.sampled_from([False] * 5 + [True]), min_size=len(transactions),
                                max_size=len(transactions)))
    with tempfile.TemporaryDirectory() as tmp:
        short = _run(Path(tmp) / "short.db", transactions, forget)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writes, "one_instance", _no_one_instance)
            usual = _run(Path(tmp) / "usual.db", transactions, forget)
        assert short == usual
        assert tables(Path(tmp) / "short.db") == tables(Path(tmp) / "usual.db")


def test_the_usual_patch_goes_the_short_way_once_its_record_and_series_are_known() -> None:
    now = "2026-12-05T03:00:00.123Z"
    create = [("urn:e:1", now, _created("urn:e:1", now, False))]
    stamps = [f"2026-12-05T03:00:0{n}.000Z" for n in range(1, 5)]
    patches = [[("urn:e:1", s, _patched({"https://x/a": [
        {"type": "Property", "value": n, "createdAt": now, "modifiedAt": s}]}, s, None, None))]
        for n, s in enumerate(stamps)]
    quick: list[bool] = []
    real = history_batch._quick_row

    def watched(tenant: str, history: OneInstance, *rest: Any) -> Any:
        row = real(tenant, history, *rest)
        quick.append(row is not None)
        return row

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(history_batch, "_quick_row", watched)
        _run(Path(tmp) / "f.db", [create, *patches], [False] * 5)
    # the first PATCH finds the series (the creation packed its instances); then known
    assert quick == [False, True, True, True]


def test_a_refused_instance_is_the_write_s_error_either_way() -> None:
    now = "2026-12-05T03:00:00.123Z"
    bad = _patched({"https://x/a": [{"type": "Bogus", "value": 1, "modifiedAt": now}]},
                   now, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        created = ("urn:e:1", now, _created("urn:e:1", now, False))
        outcomes, _ = _run(Path(tmp) / "f.db", [[created], [("urn:e:1", now, bad)]],
                           [False, False])
    assert outcomes[1] == "BadRequestData"
