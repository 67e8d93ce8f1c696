"""The ETSI NGSI-LD conformance suite (``../shared/etsi``) as a ratchet for this broker.

``python -m conformance.etsi run`` starts this broker on its embedded store and runs
the suite against it; ``check`` fails when a test listed in
``conformance/etsi-passing.txt`` did not pass; ``update`` adds the tests that now
pass to that list; ``report`` writes the results into ``docs/conformance.md``.

A test is named ``file::name`` (its ``.robot`` file under ``TP/NGSI-LD`` and its
Robot name): the suite's short ids repeat across files.
"""

from conformance.etsi.ratchet import (
    Outcome,
    Summary,
    compare,
    load_passing,
    load_summary,
    merge_passing,
    test_key,
)
from conformance.etsi.report import render_report, write_report

__all__ = [
    "Outcome",
    "Summary",
    "compare",
    "load_passing",
    "load_summary",
    "merge_passing",
    "render_report",
    "test_key",
    "write_report",
]
