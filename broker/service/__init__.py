"""The service layer: one function per NGSI-LD operation, free of any web framework.

Between the HTTP adapter (``broker.routes``) and the store (``storage``):

- :mod:`broker.service.core` — :class:`Service` (store, resolver, change bus,
  caches, seams), tenant checks, and the rule that every write is committed,
  then published; :mod:`broker.service.call` — :class:`Call`, the plain
  values of one request;
- :mod:`broker.service.entities` (5.6, 5.7.1), :mod:`~broker.service.queries`
  (5.7.2), :mod:`~broker.service.batch` (5.6.7 to 5.6.10, 5.6.20),
  :mod:`~broker.service.purge` (5.6.21), :mod:`~broker.service.discovery`
  (5.7.5 to 5.7.12), :mod:`~broker.service.snapshots` (5.16): the operations;
- :mod:`broker.service.answers` — rendering through the render cache, and the
  @context placement of answers; :mod:`broker.service.linked` — Linked Entities;
- :mod:`broker.service.caches` — every cache (rendered entities, known
  versions, answers, parses); :mod:`broker.service.reply` — :class:`Reply`;
- :mod:`broker.service.registrations` (5.9, 5.10) and
  :mod:`broker.service.registry` — Context Source Registrations, and
  :class:`Registry`, the Protocol distributed operations read them through;
- :mod:`broker.service.ports` — the Protocols it needs (:class:`ContextResolving`)
  and its seams: :class:`Sources` (distributed operations) and
  :data:`CommitListener` (the temporal API's history).
"""

from broker.service.caches import AnswerCache, Caches, KnownVersions, Parsers, RenderCache
from broker.service.call import Call
from broker.service.core import Service
from broker.service.ports import (
    LOCAL,
    BatchParts,
    CommitListener,
    ContextResolving,
    NoSources,
    Plan,
    Sources,
)
from broker.service.registry import Registrations, Registry
from broker.service.reply import Reply, empty, json_reply

__all__ = [
    "LOCAL",
    "AnswerCache",
    "BatchParts",
    "Caches",
    "Call",
    "CommitListener",
    "ContextResolving",
    "KnownVersions",
    "NoSources",
    "Parsers",
    "Plan",
    "Registrations",
    "Registry",
    "RenderCache",
    "Reply",
    "Service",
    "Sources",
    "empty",
    "json_reply",
]
