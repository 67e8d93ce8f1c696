"""Settings shared by the project's tests (tests/) and the HTTP conformance cases (conformance/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: the tests assert behaviour, never speed (speed is measured by
# ``python -m benchmarks``), and CI shares its two cores with the broker processes.
settings.register_profile("broker", deadline=None)
settings.load_profile("broker")


def _compiled_modules() -> list[Path]:
    """The C extensions an editable install built beside their ``.py`` (setup.py)."""
    root = Path(__file__).parent
    return [so for package in ("ngsi_ld", "storage") for so in (root / package).rglob("*.so")]


def pytest_report_header() -> str:
    compiled = _compiled_modules()
    return f"compiled modules (setup.py): {len(compiled)}" if compiled else "pure Python"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Python imports a module's extension in place of its .py: an extension older than
    # its source would test the old code.  Each module's own extension only loads the
    # library mypyc compiled them all into (beside the packages), rebuilt on any change.
    compiled = _compiled_modules()
    built = max((so.stat().st_mtime for so in Path(__file__).parent.glob("*.so")), default=0.0)
    stale = [so for so in compiled
             if so.with_name(so.name.split(".")[0] + ".py").stat().st_mtime
             > max(built, so.stat().st_mtime)]
    if stale:
        pytest.exit(f"compiled modules older than their source: {', '.join(map(str, stale))}; "
                    "rebuild them (NGSI_LD_COMPILE=1 pip install --no-build-isolation -e .) "
                    "or remove them (pip install -e . without NGSI_LD_COMPILE)", returncode=2)
