"""``ngsi-ld-broker load``: open-data files into a broker (by URL) or a store.

Sources (``sources``): NGSI-LD JSON and JSON lines, GeoJSON FeatureCollections,
CSV with a mapping file (``mapping``).  Sinks (``sinks``): a broker's batch
upsert over HTTP, or ``modify_many`` on a store.  ``resume`` keeps the point an
interrupted load continues from; ``command`` is the command line (its ``main``;
not imported here, so that a worker process, ``broker.loader.worker``, does not
load the command's own dependencies).
"""

from broker.loader.mapping import CsvMapping, MappingError, RowError, parse_mapping
from broker.loader.resume import ResumePoint
from broker.loader.sinks import HttpSink, LoadAborted, Reject, StoreSink
from broker.loader.sources import Record, Source, SourceError, feature_entity, open_source

__all__ = [
    "CsvMapping",
    "HttpSink",
    "LoadAborted",
    "MappingError",
    "Record",
    "Reject",
    "ResumePoint",
    "RowError",
    "Source",
    "SourceError",
    "StoreSink",
    "feature_entity",
    "open_source",
    "parse_mapping",
]
