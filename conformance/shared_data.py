"""Where the shared test data live: ``shared/`` beside the checkout (CI), or /work/shared."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The ``shared/`` folder: next to the repository first, then the workplace default."""
    for candidate in (REPO.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "smart-data-models").is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/ folder with data/smart-data-models beside {REPO}")


def smart_data_models_dir() -> Path:
    """The FIWARE Smart Data Models examples, schemas and contexts."""
    return shared_dir() / "data" / "smart-data-models"
