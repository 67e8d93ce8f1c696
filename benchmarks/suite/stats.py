"""Latency statistics, computed the same way for every load model."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method.

    Nearest rank always answers one of the observed values, so p99 of 100 samples is
    the 99th smallest, never an interpolation below the real tail.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max in milliseconds (None when there are no samples)."""
    if not latencies_ms:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    return {
        "p50": percentile(latencies_ms, 50),
        "p90": percentile(latencies_ms, 90),
        "p99": percentile(latencies_ms, 99),
        "max": max(latencies_ms),
    }
