"""The standing fuzz test: schemathesis against the ETSI NGSI-LD OpenAPI (issue 17, item 6).

Requests generated from the ETSI OpenAPI description of the API (the 1.8.1 file in
``../shared/spec/``, with its media-type typo ``application/json+ld`` read as
``application/ld+json``, see that folder's README, and its path parameters
generated as URNs) go to a broker process on a fresh SQLite store.  Whatever they
hold, the broker must:

* answer within ``TIMEOUT`` seconds (no hang);
* never answer 5xx, except the 501, 503 and 504 the specification allows;
* answer every 4xx and 5xx with a ProblemDetails body (RFC 7807, clause 5.5.3).

Bounded for CI: ``NGSI_LD_FUZZ_EXAMPLES`` examples per operation (default 6), a
fixed seed (``derandomize``); ``NGSI_LD_FUZZ_EXAMPLES=200 python -m pytest
tests/test_fuzz_openapi.py`` explores further.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from conformance.process import BrokerProcess

schemathesis = pytest.importorskip("schemathesis")

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "ngsi-ld-api-1.8.1.yaml"
EXAMPLES = int(os.environ.get("NGSI_LD_FUZZ_EXAMPLES", "6"))
#: seconds an answer may take before the broker is said to hang
TIMEOUT = 15.0
#: the 5xx statuses the specification names (clause 5.5.3, Table 5.5.3-1: 501
#: OperationNotSupported, 504 LdContextNotAvailable, and 503 for a broker unavailable)
ALLOWED_5XX = {501, 503, 504}
#: what path parameters (entity ids, attribute names...) are generated as
PATH_VALUE = "^urn:ngsi-ld:[A-Za-z0-9]{1,6}(:[A-Za-z0-9._-]{0,8})?$"


def _path_parameters(node: Any) -> None:
    """Path parameters as URNs: the file declares them ``format: uri``, and a generated
    absolute URI has a ``/`` a path segment cannot carry (schemathesis then finds no value
    at all for every operation with an id in its path)."""
    if isinstance(node, dict):
        if node.get("in") == "path":
            node["schema"] = {"type": "string", "pattern": PATH_VALUE}
        for value in node.values():
            _path_parameters(value)
    elif isinstance(node, list):
        for value in node:
            _path_parameters(value)


def _schema() -> Any:
    raw = SPEC.read_text(encoding="utf-8").replace("application/json+ld", "application/ld+json")
    spec = yaml.safe_load(raw)
    _path_parameters(spec)
    return schemathesis.openapi.from_dict(spec)


def _operations() -> list[Any]:
    if not SPEC.is_file():
        return []
    return [result.ok() for result in _schema().get_all_operations()]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    store = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/b.db"
    with BrokerProcess(store, extra=("--context-timeout", "1")) as proc:
        yield proc


def _check(case: Any, response: Any) -> None:
    status = response.status_code
    where = f"{case.method.upper()} {case.formatted_path} -> {status}: {response.text[:300]}"
    assert status < 500 or status in ALLOWED_5XX, where
    if status >= 400 and case.method.upper() != "HEAD":
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("type"), str), where
        assert "title" in body or "detail" in body, where


@pytest.mark.skipif(not SPEC.is_file(), reason=f"the ETSI OpenAPI file is not at {SPEC} "
                    "(../shared/spec beside the clone)")
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_generated_request_breaks_the_broker(broker: BrokerProcess, operation: Any) -> None:
    base_url = broker.url + "/ngsi-ld/v1"

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=TIMEOUT)
        _check(case, response)

    try:
        run()
    except Unsatisfiable:
        # a parameter schema of the ETSI file that no value satisfies (schemathesis
        # filters every candidate out): nothing to send
        pytest.skip(f"schemathesis cannot generate a request for {operation.label}")


@pytest.mark.skipif(not SPEC.is_file(), reason="the ETSI OpenAPI file is missing")
def test_every_operation_of_the_spec_is_fuzzed() -> None:
    assert len(OPERATIONS) == 53
