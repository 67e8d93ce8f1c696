"""Reading the runner's ``summary.json`` and comparing it with the list of passing tests.

Pure functions, no I/O beyond reading and writing the two files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASSING_HEADER = (
    "# ETSI NGSI-LD conformance tests this broker passes (file::name, one per line).\n"
    "# CI fails when one of them does not pass; `python -m conformance.etsi update` adds\n"
    "# the tests a change makes pass. Never remove a line to make CI green: a test\n"
    "# leaves this list only with a reading of the spec in docs/conformance.md.\n"
)


def test_key(test: Mapping[str, Any]) -> str:
    """The name of a test in the passing list: its .robot file and its Robot name."""
    return f"{test['file']}::{test['name']}"


@dataclass(frozen=True)
class Summary:
    """One run of the suite: status and first failure line of every test, by key."""

    status: dict[str, str]
    message: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)

    def passed(self) -> set[str]:
        return {key for key, status in self.status.items() if status == "PASS"}


def parse_summary(data: Mapping[str, Any]) -> Summary:
    """A :class:`Summary` from the decoded ``summary.json``.

    A key that appears twice (the suite has none today) passes only if every copy does.
    """
    status: dict[str, str] = {}
    message: dict[str, str] = {}
    for test in data.get("tests", []):
        key = test_key(test)
        if status.get(key, "PASS") == "PASS":
            status[key] = test["status"]
            message[key] = test.get("message") or ""
    meta = {k: v for k, v in data.items() if k not in ("tests", "areas", "top_failure_messages")}
    return Summary(status=status, message=message, meta=meta)


def load_summary(path: Path) -> Summary:
    return parse_summary(json.loads(path.read_text(encoding="utf-8")))


def parse_passing(text: str) -> set[str]:
    """The keys of a passing list: one per line, ``#`` comments and blank lines ignored."""
    return {
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    }


def load_passing(path: Path) -> set[str]:
    return parse_passing(path.read_text(encoding="utf-8")) if path.exists() else set()


@dataclass(frozen=True)
class Outcome:
    """How a run compares with the passing list."""

    #: listed as passing, and failed (or was skipped) in this run
    regressed: list[str]
    #: listed as passing, and not run at all (a narrower run, or a renamed test)
    missing: list[str]
    #: passed in this run and not listed yet
    new: list[str]

    @property
    def ok(self) -> bool:
        return not self.regressed and not self.missing


def compare(passing: Iterable[str], summary: Summary, *, partial: bool = False) -> Outcome:
    """Compare a run with the passing list; ``partial``: tests not run are not missing."""
    listed = set(passing)
    regressed = sorted(k for k in listed if k in summary.status and summary.status[k] != "PASS")
    missing = [] if partial else sorted(k for k in listed if k not in summary.status)
    new = sorted(summary.passed() - listed)
    return Outcome(regressed=regressed, missing=missing, new=new)


def merge_passing(passing: Iterable[str], summary: Summary) -> str:
    """The passing list with this run's passes added (nothing is removed)."""
    keys = sorted(set(passing) | summary.passed())
    return PASSING_HEADER + "".join(key + "\n" for key in keys)


def rerun_outcome(first: Outcome, again: Summary) -> Outcome:
    """``first`` after the regressed tests ran once more: what failed twice stays regressed.

    A test of the suite that depends on timing (notifications, throttling) may fail
    once on a loaded machine; one that fails twice in a row is a regression.
    """
    still = [k for k in first.regressed if again.status.get(k) != "PASS"]
    return Outcome(regressed=still, missing=first.missing, new=first.new)
