"""Settings shared by the project's tests (tests/) and the HTTP conformance cases (conformance/)."""

from __future__ import annotations

from hypothesis import settings

# No per-example deadline: the tests assert behaviour, never speed (speed is measured by
# ``python -m benchmarks``), and CI shares its two cores with the broker processes.
settings.register_profile("broker", deadline=None)
settings.load_profile("broker")
