"""Results: one record per scenario, rendered as a Markdown table and as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson


@dataclass
class ScenarioResult:
    """What one scenario measured (``status``: ok, skipped or error)."""

    name: str
    status: str = "ok"
    reason: str = ""
    description: str = ""
    unit: str = "req/s"
    rate: float | None = None  # closed loop, in ``unit``
    requests_per_s: float | None = None
    baseline_rate: float | None = None  # in ``unit``
    closed_p50_ms: float | None = None
    closed_p99_ms: float | None = None
    open_rate: float | None = None  # requests/s offered in the open loop
    p50_ms: float | None = None  # open loop at 50% of saturation
    p99_ms: float | None = None
    errors: int = 0
    lost: int | None = None  # notifications
    rss_mb: float | None = None
    response_bytes: int | None = None
    target: str = ""
    target_met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.rate is None or not self.baseline_rate:
            return None
        return self.rate / self.baseline_rate


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _rate(result: ScenarioResult) -> str:
    if result.rate is None:
        return "-"
    digits = 2 if result.unit == "s" else 0
    return f"{_num(result.rate, digits)} {result.unit}"


def _target(result: ScenarioResult) -> str:
    if not result.target:
        return ""
    mark = {True: "met", False: "MISSED", None: "not checked"}[result.target_met]
    return f"{result.target} ({mark})"


HEADER = (
    "| Scenario | Throughput | Baseline | Ratio | p50 ms | p99 ms | Errors | RSS MB | Target |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---|"
)


def render_row(result: ScenarioResult) -> str:
    """One Markdown table row; skipped scenarios say why."""
    if result.status != "ok":
        return f"| {result.name} | {result.status}: {result.reason} |  |  |  |  |  |  | " \
               f"{result.target} |"
    ratio = result.ratio
    errors = str(result.errors)
    if result.lost is not None:
        errors += f" ({result.lost} lost)"
    return (
        f"| {result.name} | {_rate(result)} | {_num(result.baseline_rate)} | "
        f"{'-' if ratio is None else f'{ratio:.0%}'} | {_ms(result.p50_ms)} | "
        f"{_ms(result.p99_ms)} | {errors} | {_num(result.rss_mb, 1)} | {_target(result)} |"
    )


def render_markdown(results: list[ScenarioResult], meta: dict[str, Any]) -> str:
    """The report: run details, the table, then notes."""
    lines = [f"## Benchmark run {meta.get('date', '')}", ""]
    for key in ("machine", "cpus", "pinning", "broker", "store", "workers", "mode",
                "duration_s", "repeat", "generator_ceiling", "dataset_load"):
        if key in meta:
            lines.append(f"- {key.replace('_', ' ')}: {meta[key]}")
    lines += ["", HEADER, *(render_row(r) for r in results), ""]
    lines.append(
        "Throughput: closed loop at saturation (wrk). Baseline: a bare aiohttp app on the "
        "same core answering the same requests with a body of the same size. p50/p99: open "
        "loop at 50% of the measured saturation rate, timed from the scheduled send. Errors: "
        "HTTP >= 400 and socket errors in both loops. RSS: broker after the scenario."
    )
    for note in meta.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def render_json(results: list[ScenarioResult], meta: dict[str, Any]) -> bytes:
    """The same report as JSON (``ratio`` included)."""
    rows = [{**asdict(r), "ratio": r.ratio} for r in results]
    return orjson.dumps({"meta": meta, "results": rows}, option=orjson.OPT_INDENT_2)
