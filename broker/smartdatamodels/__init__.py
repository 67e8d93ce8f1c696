"""Smart Data Models files bundled for offline use (CC BY 4.0, see LICENSE.md here).

The JSON Schemas of the types the demo publishes (``<Type>/schema.json``) and
the @context of their data models, with ``index.json`` mapping each context's
published URL to its file: this directory works both as ``--model-schemas``
and as ``--context-dir``.
"""

from __future__ import annotations

from pathlib import Path

#: the directory: schemas, contexts and index.json
DIRECTORY = Path(__file__).resolve().parent

_RAW = "https://raw.githubusercontent.com/smart-data-models/dataModel.{}/master/context.jsonld"

#: the published @context URL of each data model, by data model name
CONTEXTS = {
    model: _RAW.format(model)
    for model in ("Streetlighting", "Environment", "Weather", "Transportation", "DCAT-AP")
}

#: the data model of each bundled entity type
TYPE_MODELS = {
    "Streetlight": "Streetlighting",
    "AirQualityObserved": "Environment",
    "WeatherObserved": "Weather",
    "TrafficFlowObserved": "Transportation",
    "Dataset": "DCAT-AP",
    "Distribution": "DCAT-AP",
    "Catalogue": "DCAT-AP",
}


def context_url(entity_type: str) -> str:
    """The @context URL of a bundled entity type's data model."""
    return CONTEXTS[TYPE_MODELS[entity_type]]


__all__ = ["CONTEXTS", "DIRECTORY", "TYPE_MODELS", "context_url"]
