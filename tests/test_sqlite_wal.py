"""storage.sqlite.wal: the WAL index header as data_version reads it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from storage.sqlite.wal import HEADER_SIZE, WalIndexView


def _wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    return conn


def test_no_header_until_the_index_exists(tmp_path: Path) -> None:
    view = WalIndexView(tmp_path / "db.sqlite")
    assert view.header() is None
    conn = _wal_database(tmp_path / "db.sqlite")
    try:
        header = view.header()  # the same view maps it once it is there
        assert header is not None and len(header) == HEADER_SIZE
    finally:
        view.close()
        conn.close()


def test_the_header_follows_every_commit_of_any_connection(tmp_path: Path) -> None:
    conn = _wal_database(tmp_path / "db.sqlite")
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    view = WalIndexView(tmp_path / "db.sqlite")
    try:
        seen = [view.header()]
        for n, writer in enumerate([conn, other, conn]):
            writer.execute("INSERT INTO t VALUES (?)", (n,))
            seen.append(view.header())
        assert None not in seen and len(set(seen)) == len(seen)
        assert view.header() == seen[-1]  # no commit, no change
    finally:
        view.close()
        other.close()
        conn.close()


def test_close_can_be_called_twice_and_the_view_maps_again(tmp_path: Path) -> None:
    conn = _wal_database(tmp_path / "db.sqlite")
    view = WalIndexView(tmp_path / "db.sqlite")
    try:
        before = view.header()
        view.close()
        view.close()
        assert view.header() == before
    finally:
        view.close()
        conn.close()


def test_views_of_one_file_share_a_descriptor_closed_with_the_last(tmp_path: Path) -> None:
    conn = _wal_database(tmp_path / "db.sqlite")
    first, second = WalIndexView(tmp_path / "db.sqlite"), WalIndexView(tmp_path / "db.sqlite")
    try:
        before = first.header()
        assert before is not None and second.header() == before
        fds = len(os.listdir("/proc/self/fd"))
        first.close()
        assert len(os.listdir("/proc/self/fd")) == fds  # still in use by the second view
        conn.execute("INSERT INTO t VALUES (1)")
        assert second.header() not in (None, before)
        second.close()
        assert len(os.listdir("/proc/self/fd")) == fds - 2  # the descriptor and the mapping's
    finally:
        first.close()
        second.close()
        conn.close()
