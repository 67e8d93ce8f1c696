"""The results section of ``docs/conformance.md``, written from a run's summary.

The section sits between two markers; everything else in the file (the readings
of the spec where a test and this broker differ) is written by hand and kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from conformance.etsi.ratchet import Summary

BEGIN = "<!-- etsi-results:begin: written by `python -m conformance.etsi report`, do not edit -->"
END = "<!-- etsi-results:end -->"

#: areas of the suite that belong to parts of the API other issues build
OTHER_ISSUES: dict[str, str] = {
    "ContextInformation/Consumption/TemporalEntity": "temporal API (#15)",
    "ContextInformation/Provision/TemporalEntity": "temporal API (#15)",
    "ContextInformation/Provision/TemporalEntityAttributes": "temporal API (#15)",
    "ContextInformation/EntityMap": "distributed operations (#16)",
    "ContextSource": "context sources (#16)",
    "DistributedOperations": "distributed operations (#16)",
}


def area_of(file: str) -> str:
    """The area a test file belongs to: two folders deep, three under Consumption/Provision."""
    parts = file.split("/")
    depth = 3 if parts[0] == "ContextInformation" and parts[1] in ("Consumption", "Provision") \
        else 2
    return "/".join(parts[:min(depth, len(parts) - 1)])


def scope_of(area: str) -> str:
    for prefix, owner in OTHER_ISSUES.items():
        if area == prefix or area.startswith(prefix + "/"):
            return owner
    return "implemented"


def _file_of(key: str) -> str:
    return key.split("::", 1)[0]


def _name_of(key: str) -> str:
    return key.split("::", 1)[1]


def _short(rev: object) -> str:
    text = str(rev or "?")
    return text[:12] if re.fullmatch(r"[0-9a-f]{40}", text) else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(
    summary: Summary, *, commit: str, purposes: Mapping[str, str] | None = None
) -> str:
    """The markdown of the results section (markers included)."""
    purposes = purposes or {}
    by_area: dict[str, list[str]] = defaultdict(list)
    for key in summary.status:
        by_area[area_of(_file_of(key))].append(key)
    passed = summary.passed()
    total = len(summary.status)
    in_scope = [k for a, keys in by_area.items() if scope_of(a) == "implemented" for k in keys]
    lines = [
        BEGIN,
        "## Results",
        "",
        f"Run started {summary.meta.get('started', '?')} on commit `{commit}`, suite "
        f"`{_short(summary.meta.get('suite_rev'))}`, {summary.meta.get('elapsed_s', '?')} s: "
        f"**{len(passed)} of {total} pass**; in the areas this broker implements, "
        f"**{len(passed & set(in_scope))} of {len(in_scope)}**.",
        "",
        "| area | tests | pass | scope |",
        "|---|---:|---:|---|",
    ]
    for area in sorted(by_area):
        keys = by_area[area]
        ok = sum(1 for k in keys if k in passed)
        lines.append(f"| {area} | {len(keys)} | {ok} | {scope_of(area)} |")
    lines += ["", "### Per test purpose", "",
              "Failing tests are named; a purpose whose tests all pass shows none.", ""]
    for area in sorted(by_area):
        if scope_of(area) != "implemented":
            continue
        files: dict[str, list[str]] = defaultdict(list)
        for key in by_area[area]:
            files[_file_of(key)].append(key)
        ok = sum(1 for k in by_area[area] if k in passed)
        lines += [f"#### {area} ({ok} of {len(by_area[area])})", "",
                  "| test purpose | tests | pass | failing |", "|---|---:|---:|---|"]
        for file in sorted(files):
            keys = files[file]
            failing = [
                f"{_name_of(k)}: {summary.message.get(k, '')[:120]}"
                for k in sorted(keys) if k not in passed
            ]
            purpose = purposes.get(file, "")
            label = f"`{file.rsplit('/', 1)[-1]}` {purpose}".strip()
            lines.append(
                f"| {_cell(label)} | {len(keys)} | {sum(1 for k in keys if k in passed)} | "
                f"{_cell('<br>'.join(failing))} |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """``document`` with its results section replaced (appended when it has none)."""
    pattern = re.compile(re.escape(BEGIN.split(":", 1)[0]) + r".*?" + re.escape(END) + r"\n?",
                         re.S)
    if pattern.search(document):
        return pattern.sub(lambda _: section, document, count=1)
    return document.rstrip("\n") + "\n\n" + section


def write_report(path: Path, section: str) -> None:
    document = path.read_text(encoding="utf-8") if path.exists() else "# Conformance\n"
    path.write_text(replace_section(document, section), encoding="utf-8")


def purposes_of(suite: Path) -> dict[str, str]:
    """Each test file's Documentation line (its test purpose), by path under TP/NGSI-LD."""
    root = suite / "TP" / "NGSI-LD"
    found: dict[str, str] = {}
    for robot in root.rglob("*.robot"):
        match = re.search(r"^Documentation\s+(.+)$", robot.read_text(encoding="utf-8"), re.M)
        if match:
            found[robot.relative_to(root).as_posix()] = match.group(1).strip()
    return found
