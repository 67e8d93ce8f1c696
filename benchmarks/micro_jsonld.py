"""Micro-benchmark: expand+compact of the Streetlight example, fast path vs pyld.

Run ``python -m benchmarks.micro_jsonld`` (``--quick`` for a short smoke run).
The fast path is ``ActiveContext.expand_entity`` + ``compact_entity`` on the
internal form; the reference is ``pyld.jsonld.expand`` + ``compact`` of the same
normalized document with the same context, served locally.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import orjson
from pyld import jsonld

from benchmarks.suite.scenarios import STREETLIGHT_CONTEXT, STREETLIGHT_EXAMPLE
from ngsi_ld.jsonld import bundled_document, compile_context, core_context_url

_CONTEXT_URL = "https://example.org/contexts/streetlighting.jsonld"
_MEMBERS = {
    "type", "value", "object", "objectType", "observedAt", "unitCode", "datasetId",
    "createdAt", "modifiedAt", "languageMap", "vocab", "json", "valueList", "objectList",
}  # fmt: skip


def _instance(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sub: dict[str, Any] = {}
    for key, member in body.items():
        if key in _MEMBERS:
            out[key] = member
        else:
            sub[key] = _instance(member)
    if sub:
        out["sub"] = sub
    return out


def to_internal(document: dict[str, Any]) -> dict[str, Any]:
    """Normalized NGSI-LD (attributes at top level) -> the internal entity form."""
    types = document["type"]
    entity: dict[str, Any] = {
        "id": document["id"],
        "type": types if isinstance(types, list) else [types],
    }
    attrs: dict[str, Any] = {}
    for key, body in document.items():
        if key in ("id", "type", "@context"):
            continue
        attrs[key] = [_instance(b) for b in (body if isinstance(body, list) else [body])]
    entity["attrs"] = attrs
    return entity


def _rate(fn: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return iterations / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark, print both rates and the ratio; return the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few hundred iterations only")
    args = parser.parse_args(argv)
    fast_iterations, pyld_iterations = (300, 30) if args.quick else (50_000, 500)

    core_url = core_context_url()
    documents = {_CONTEXT_URL: orjson.loads(STREETLIGHT_CONTEXT.read_bytes())}
    document = orjson.loads(STREETLIGHT_EXAMPLE.read_bytes())
    document["@context"] = [_CONTEXT_URL, core_url]
    entity = to_internal(document)
    ctx = compile_context(_CONTEXT_URL, documents, core_url)

    def loader(url: str, options: Any = None) -> dict[str, Any]:
        doc = bundled_document(url, core_url) or documents[url]
        return {"contextUrl": None, "documentUrl": url, "document": doc}

    options = {"documentLoader": loader}

    def fast() -> object:
        return ctx.compact_entity(ctx.expand_entity(entity))

    def reference() -> object:
        return jsonld.compact(jsonld.expand(document, options), document["@context"], options)

    fast()
    reference()
    fast_rate = _rate(fast, fast_iterations)
    pyld_rate = _rate(reference, pyld_iterations)
    ratio = fast_rate / pyld_rate
    attrs = len(entity["attrs"])
    print(f"Streetlight ({attrs} attributes), expand+compact per second:")
    print(f"  fast path: {fast_rate:12.0f}/s  ({fast_iterations} iterations)")
    print(f"  pyld:      {pyld_rate:12.0f}/s  ({pyld_iterations} iterations)")
    print(f"  ratio:     {ratio:12.1f}x")
    return ratio


if __name__ == "__main__":
    main()
