"""History packs compressed by a zstd dictionary trained on the store's own packs.

A pack (:mod:`.history_packs`) is the JSON of one write's instances, most often an
entity's whole stored document: kilobytes of the same expanded IRIs, keys and
system attributes from one pack to the next, written at every write and read only
when the history is.  zstd with a dictionary trained on a few hundred of them
shrinks a Smart Data Models Streetlight's 4.9 KB pack to about 160 bytes (3-4 µs a
pack), so a pack no longer spills into an overflow page, and the writer's B-tree
and WAL work for it falls by about half (benchmarks/README.md, packzstd).

The rules, per store file and writer:

1. A file starts without a dictionary: its packs are stored as their JSON.
2. A writer that finds none keeps the bodies of the first packs it writes (up to
   :data:`SAMPLES` of them, :data:`SAMPLE_BYTES` in all), then trains a dictionary
   of :data:`DICT_SIZE` bytes on them (once: tens of ms on the writer thread) and
   names it by a random zstd dictionary id.  One that finds a dictionary in
   ``pack_dicts`` (from an earlier run, another process) takes the newest.
3. Every transaction that stores a compressed pack also inserts its dictionary's
   row unless present (``INSERT OR IGNORE``, a key look-up): a rolled-back
   transaction cannot leave frames whose dictionary is not in the file.
4. A body of at least :data:`MIN_SIZE` bytes is stored as a zstd frame of that
   dictionary when the frame is shorter; any other as its JSON.  A frame starts
   with zstd's magic number, which no JSON text does.
5. A reader decodes a frame with the dictionary its header names, read from
   ``pack_dicts``; an unknown one is a corrupt file (:class:`PackDecodeError`).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Sequence

import zstandard

__all__ = ["DICT_SIZE", "MIN_SIZE", "SAMPLES", "SAMPLE_BYTES", "SCHEMA", "PackCodec",
           "PackDecodeError", "create", "decode"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS pack_dicts (
    id INTEGER PRIMARY KEY,
    dict BLOB NOT NULL)
"""

#: packs sampled before a dictionary is trained (zstd's trainer wants ~100 or more)
SAMPLES = 256
#: bytes of samples kept at most (a sample set past it is trained as it is)
SAMPLE_BYTES = 4 << 20
#: the dictionary's size: 16 KB held 30x on Streetlights against 21x for 4 KB
DICT_SIZE = 16384
#: bodies shorter than this are stored as they are (a frame saves little on them)
MIN_SIZE = 128
#: zstd level: 3 (its default) compressed as fast as 1 with a dictionary, and smaller
LEVEL = 3
#: training attempts (a failed one, e.g. samples all alike, waits for twice as many)
ATTEMPTS = 3

_MAGIC = b"\x28\xb5\x2f\xfd"
#: zstd reserves dictionary ids below 32768 and from 2**31 (its format's RFC 8878)
_IDS = (32768, 2**31 - 1)
_INSERT = "INSERT OR IGNORE INTO pack_dicts (id, dict) VALUES (?, ?)"


class PackDecodeError(sqlite3.DatabaseError):
    """A stored pack's frame names a dictionary the file does not hold, or is corrupt."""


def create(conn: sqlite3.Connection) -> None:
    """Create the dictionaries' table (a file of schema 9 or below has none)."""
    conn.execute(SCHEMA)


class PackCodec:
    """The pack encoding of one store's writer thread (see the module's rules)."""

    __slots__ = ("_attempts", "_compressor", "_dict", "_id", "_looked", "_sampled",
                 "_samples")

    def __init__(self) -> None:
        self._compressor: zstandard.ZstdCompressor | None = None
        self._dict = b""
        self._id = 0
        self._looked = False  # pack_dicts read for a dictionary to take (rule 2)
        self._samples: list[bytes | bytearray | memoryview] = []
        self._sampled = 0
        self._attempts = 0

    @property
    def dict_id(self) -> int:
        """The id of the dictionary packs are compressed with (0: none yet)."""
        return self._id

    def encode(self, conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]
               ) -> list[tuple[object, ...]]:
        """``rows`` of ``temporal_packs`` (their body last) as they are stored, in the
        caller's write transaction."""
        if self._compressor is None:
            self._prepare(conn, rows)
            if self._compressor is None:
                return list(rows)
        compress = self._compressor.compress
        out: list[tuple[object, ...]] = []
        framed = False
        for row in rows:
            body = row[-1]
            if isinstance(body, bytes | bytearray | memoryview) and len(body) >= MIN_SIZE:
                frame = compress(body)
                if len(frame) < len(body):
                    out.append((*row[:-1], frame))
                    framed = True
                    continue
            out.append(row)
        if framed:  # rule 3: the dictionary's row in this transaction (a no-op when there)
            conn.execute(_INSERT, (self._id, self._dict))
        return out

    def _prepare(self, conn: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> None:
        if not self._looked:
            self._looked = True
            if self._take_the_files(conn):
                return
        if self._attempts >= ATTEMPTS:
            return
        for row in rows:
            body = row[-1]
            if isinstance(body, bytes | bytearray | memoryview) and len(body) >= MIN_SIZE:
                self._samples.append(bytes(body))
                self._sampled += len(body)
        if len(self._samples) < SAMPLES << self._attempts and self._sampled < SAMPLE_BYTES:
            return
        if self._take_the_files(conn):  # another process trained one meanwhile
            return
        self._attempts += 1
        try:
            trained = zstandard.train_dictionary(
                DICT_SIZE, self._samples, dict_id=secrets.randbelow(_IDS[1] - _IDS[0]) + _IDS[0],
                level=LEVEL)
        except zstandard.ZstdError:  # too few distinct samples: wait for more
            return
        self._samples, self._sampled = [], 0
        data = trained.as_bytes()
        taken = conn.execute("SELECT dict FROM pack_dicts WHERE id = ?",
                             (trained.dict_id(),)).fetchone()
        if taken is not None and bytes(taken[0]) != data:
            return  # another writer's dictionary has this id: train again later
        self._adopt(trained.dict_id(), data)

    def _take_the_files(self, conn: sqlite3.Connection) -> bool:
        found = conn.execute(
            "SELECT id, dict FROM pack_dicts ORDER BY rowid DESC LIMIT 1").fetchone()
        if found is not None:
            self._adopt(int(found[0]), bytes(found[1]))
        return found is not None

    def _adopt(self, dict_id: int, data: bytes) -> None:
        self._id, self._dict = dict_id, data
        self._compressor = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=zstandard.ZstdCompressionDict(data))
        self._samples, self._sampled = [], 0


def decode(conn: sqlite3.Connection, bodies: Sequence[bytes]) -> list[bytes]:
    """The JSON of stored pack ``bodies`` (frames decompressed, others as they are)."""
    if not any(body[:4] == _MAGIC for body in bodies):
        return list(bodies)
    decompressors: dict[int, zstandard.ZstdDecompressor] = {}
    out: list[bytes] = []
    for body in bodies:
        if body[:4] != _MAGIC:
            out.append(body)
            continue
        try:
            dict_id = zstandard.get_frame_parameters(body).dict_id
            decompressor = decompressors.get(dict_id)
            if decompressor is None:
                found = conn.execute("SELECT dict FROM pack_dicts WHERE id = ?",
                                     (dict_id,)).fetchone()
                if found is None:
                    raise PackDecodeError(
                        f"a history pack names zstd dictionary {dict_id}, which the store"
                        " file does not hold")
                decompressor = decompressors[dict_id] = zstandard.ZstdDecompressor(
                    dict_data=zstandard.ZstdCompressionDict(bytes(found[0])))
            out.append(decompressor.decompress(body))
        except zstandard.ZstdError as error:
            raise PackDecodeError(f"a history pack does not decompress: {error}") from error
    return out
