"""Request metrics in the Prometheus text format (``GET /metrics``)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RouteStats:
    """What is counted of the requests of one method and route (:meth:`Metrics.route`)."""

    __slots__ = ("histogram", "seconds", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.histogram = [0] * (len(BUCKETS) + 1)
        self.seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        """Count one request answered with ``status`` in ``seconds``."""
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.histogram[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.seconds += seconds


class Metrics:
    """Counters by route and status, and latency histograms by route."""

    def __init__(self) -> None:
        #: (method, route) -> its counts by status, latency histogram and latency sum:
        #: one look-up per request (``observe`` runs for every request, issue 19)
        self._routes: dict[tuple[str, str], RouteStats] = {}
        self.counters: dict[str, int] = defaultdict(int)
        self.gauges: dict[str, Callable[[], float]] = {}
        #: counters kept by their owner (a cache's hits), read when rendered
        self.read_counters: dict[str, Callable[[], int]] = {}

    @property
    def requests(self) -> dict[tuple[str, str, int], int]:
        """Requests counted by (method, route, status)."""
        return {(method, route, status): count
                for (method, route), stats in self._routes.items()
                for status, count in stats.statuses.items()}

    def route(self, method: str, route: str) -> RouteStats:
        """The counts of the requests of ``method`` and ``route``: a caller that serves
        one route keeps them (the edge, per aiohttp route) and observes on them."""
        stats = self._routes.get((method, route))
        if stats is None:
            stats = self._routes[(method, route)] = RouteStats()
        return stats

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.route(method, route).observe(status, seconds)

    def incr(self, name: str, amount: int = 1) -> None:
        """A free counter, exposed as ``ngsi_ld_<name>_total``."""
        self.counters[name] += amount

    def counted(self, name: str, read: Callable[[], int]) -> None:
        """A counter its owner keeps, read when the metrics are rendered, exposed as
        ``ngsi_ld_<name>_total``."""
        self.read_counters[name] = read

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """A value read when the metrics are rendered, exposed as ``ngsi_ld_<name>``."""
        self.gauges[name] = read

    def render(self) -> str:
        lines = [
            "# HELP ngsi_ld_http_requests_total HTTP requests by method, route and status.",
            "# TYPE ngsi_ld_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(
                f'ngsi_ld_http_requests_total{{method="{method}",route="{route}",'
                f'status="{status}"}} {count}'
            )
        lines += [
            "# HELP ngsi_ld_http_request_duration_seconds Request latency by method and route.",
            "# TYPE ngsi_ld_http_request_duration_seconds histogram",
        ]
        for (method, route), stats in sorted(self._routes.items()):
            hist = stats.histogram
            labels = f'method="{method}",route="{route}"'
            cumulative = 0
            for bound, count in zip(BUCKETS, hist, strict=False):
                cumulative += count
                lines.append(
                    f'ngsi_ld_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{cumulative}"
                )
            cumulative += hist[-1]
            lines.append(
                f'ngsi_ld_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {cumulative}'
            )
            total = stats.seconds
            lines.append(f"ngsi_ld_http_request_duration_seconds_sum{{{labels}}} {total}")
            lines.append(f"ngsi_ld_http_request_duration_seconds_count{{{labels}}} {cumulative}")
        counters = {**self.counters, **{n: read() for n, read in self.read_counters.items()}}
        for name, value in sorted(counters.items()):
            lines.append(f"# TYPE ngsi_ld_{name}_total counter")
            lines.append(f"ngsi_ld_{name}_total {value}")
        for name, read in sorted(self.gauges.items()):
            lines.append(f"# TYPE ngsi_ld_{name} gauge")
            lines.append(f"ngsi_ld_{name} {read()}")
        return "\n".join(lines) + "\n"
