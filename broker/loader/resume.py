"""The resume point of a load: how many records of a file are safely written.

After each batch is acknowledged (by the broker, or committed by the store)
the number of the last record of that batch is written to a small state file,
atomically (write then rename).  A later load of the same file (same path,
size and modification time) into the same target starts after it; a load that
finishes removes it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

DEFAULT_DIRECTORY = Path(".ngsi-ld-load")


@dataclass(slots=True)
class ResumePoint:
    """The state file of one (file, target) pair."""

    state: Path
    file: Path
    target: str
    #: the file's signature, taken once: a load saves its point after every batch
    _signed: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def of(cls, file: Path, target: str, directory: Path = DEFAULT_DIRECTORY) -> ResumePoint:
        key = hashlib.sha256(f"{file.resolve()}\n{target}".encode()).hexdigest()[:24]
        return cls(directory / f"{key}.json", file, target)

    def _signature(self) -> dict[str, object]:
        info = self.file.stat()
        return {"file": str(self.file.resolve()), "size": info.st_size,
                "mtime_ns": info.st_mtime_ns, "target": self.target}

    def load(self) -> int:
        """Records already written by an interrupted load (0 when there is none to resume)."""
        try:
            state = orjson.loads(self.state.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return 0
        if not isinstance(state, dict) or any(
            state.get(k) != v for k, v in self._signature().items()
        ):
            return 0  # another file, a changed file or another target: start again
        done = state.get("done")
        return done if isinstance(done, int) and done > 0 else 0

    def save(self, done: int) -> None:
        """Remember that records 1..done are written."""
        if not self._signed:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            # the object's text without its closing brace: "done" is added at each save
            self._signed = orjson.dumps(self._signature())[:-1] + b","
        temporary = self.state.with_suffix(".tmp")
        temporary.write_bytes(self._signed + b'"done":%d}' % done)
        os.replace(temporary, self.state)

    def clear(self) -> None:
        """The load finished: nothing to resume."""
        self.state.unlink(missing_ok=True)
