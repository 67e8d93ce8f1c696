"""What a scenario sends: request templates shared by wrk (``lua/request.lua``) and
the open-loop client, so both load models send the same requests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# The two placeholders request.lua understands; keep both sides in step.
_PLACEHOLDER = re.compile(r"(__N__|__UID__|__I__)")


def render_template(template: str, n: int, uid: str, i: int = 0) -> str:
    """``template`` with ``__N__`` replaced by ``n``, ``__UID__`` by ``uid``, ``__I__`` by ``i``."""
    values = {"__N__": str(n), "__UID__": uid, "__I__": str(i)}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass(frozen=True)
class RequestSpec:
    """A stream of requests: request ``i`` uses path ``paths[i % len(paths)]``, with
    ``__N__ = i % count``, ``__I__ = i`` and ``__UID__`` unique to the run.

    ``i`` starts at 1 for the first request, as in request.lua.
    """

    method: str
    paths: tuple[str, ...]
    body: str | None = None
    count: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("a RequestSpec needs at least one path")
        if self.count < 1:
            raise ValueError(f"count must be positive, not {self.count}")
        if any("\n" in p for p in self.paths):
            raise ValueError("a path template cannot contain a newline")

    def render(self, counter: int, uid: str) -> tuple[str, bytes | None]:
        """Path and body of request number ``counter`` (``uid`` fills ``__UID__``)."""
        n = counter % self.count
        path = render_template(self.paths[counter % len(self.paths)], n, uid, counter)
        body = None if self.body is None else render_template(self.body, n, uid, counter).encode()
        return path, body

    def write_files(self, directory: Path, name: str) -> tuple[Path, Path | None]:
        """The paths file and body file request.lua reads (body None: no body)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths_file = directory / f"{name}.paths"
        paths_file.write_text("\n".join(self.paths) + "\n")
        body_file = None
        if self.body is not None:
            body_file = directory / f"{name}.body"
            body_file.write_text(self.body)
        return paths_file, body_file
