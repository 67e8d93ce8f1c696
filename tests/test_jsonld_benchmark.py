"""The micro-benchmark runs (smoke run; its rates are printed, never asserted)."""

from __future__ import annotations

import pytest

from benchmarks import micro_jsonld
from benchmarks.suite.scenarios import STREETLIGHT_EXAMPLE


def test_quick_run_prints_both_rates(capsys: pytest.CaptureFixture[str]) -> None:
    if not STREETLIGHT_EXAMPLE.is_file():
        pytest.skip("Smart Data Models examples not available")
    micro_jsonld.main(["--quick"])
    out = capsys.readouterr().out
    assert "fast path:" in out and "pyld:" in out and "ratio:" in out


def test_converter_builds_the_internal_form() -> None:
    document = {
        "id": "urn:ngsi-ld:X:1",
        "type": "X",
        "@context": "https://example.org/ctx.jsonld",
        "a": {"type": "Property", "value": 1, "b": {"type": "Property", "value": 2}},
        "r": [
            {"type": "Relationship", "object": "urn:y"},
            {"type": "Relationship", "object": "urn:z", "datasetId": "urn:d"},
        ],
    }
    assert micro_jsonld.to_internal(document) == {
        "id": "urn:ngsi-ld:X:1",
        "type": ["X"],
        "attrs": {
            "a": [{"type": "Property", "value": 1, "sub": {"b": {"type": "Property", "value": 2}}}],
            "r": [
                {"type": "Relationship", "object": "urn:y"},
                {"type": "Relationship", "object": "urn:z", "datasetId": "urn:d"},
            ],
        },
    }
