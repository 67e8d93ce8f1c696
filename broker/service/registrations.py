"""Clauses 5.9 and 5.10: Context Source Registrations (register, update, delete, retrieve, query).

Resources 6.8 ``/csourceRegistrations`` and 6.9 ``/csourceRegistrations/{id}``.
The pure parts are ``ngsi_ld.federation`` (validation, the update fragment,
the retrieval view, the query evaluator, the Conflict rules); the
registrations themselves are kept by :class:`~broker.service.registry.Registrations`
(``Service.registry``), in memory over the store's records.

Rules kept here:

- a registration is created in the tenant the request names (6.3.14), which
  it creates, as an entity creation does; the ``tenant`` *member* is the
  tenant the source is asked in (5.2.9), unrelated;
- 5.9.2.4 and 4.3.6.3: an exclusive or redirect registration that overlaps
  another exclusive one, or data this broker holds, is 409 Conflict, checked
  at create and at update (against the others);
- answers carry their @context as entities do (6.3.5): a Link header for
  ``application/json``, ``@context`` in the body for ``application/ld+json``;
  names are compacted with the request's @context.  Registrations have no
  simplified or concise representation (5.2.9 defines one form).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from broker.service.answers import entity_reply, link_only
from broker.service.core import Call, Service
from broker.service.reply import Reply, empty
from ngsi_ld.errors import AlreadyExists, BadRequestData, ResourceNotFound
from ngsi_ld.federation import (
    Registration,
    apply_fragment,
    conflict_probes,
    local_conflict,
    parse_registration,
    registration_conflict,
    registration_query,
    render_registration,
)
from ngsi_ld.headers import negotiate, parse_link_context
from ngsi_ld.identifiers import is_iri
from ngsi_ld.paging import page_of, subscription_page_links
from ngsi_ld.params import flag, options_of

__all__ = [
    "REGISTRATIONS", "create_registration", "delete_registration", "query_registrations",
    "retrieve_registration", "update_registration",
]

REGISTRATIONS = "/ngsi-ld/v1/csourceRegistrations"
READ_MEDIA = ("application/json", "application/ld+json")
RESULTS_COUNT = "NGSILD-Results-Count"


def _now() -> datetime:
    return datetime.now(UTC)


def _location(registration_id: str) -> dict[str, str]:
    return {"Location": f"{REGISTRATIONS}/{quote(registration_id, safe=':')}"}


def _checked_id(registration_id: str) -> str:
    # 5.9.3.4, 5.9.4.4, 5.10.1.4: an id that is not a URI is BadRequestData
    if not is_iri(registration_id):
        raise BadRequestData(f"registration id {registration_id!r} is not a URI")
    return registration_id


async def _conflicts(service: Service, tenant: str, registration: Registration) -> None:
    """4.3.6.3 and 5.9.2.4: raise the Conflict an exclusive or redirect registration has."""
    if not registration.mode.proxied:
        return
    others = [r for r in service.registry.of(tenant) if r.id != registration.id]
    conflict = registration_conflict(registration, others)
    if conflict is not None:
        raise conflict
    for probe in conflict_probes(registration):
        found, _ = await service.store.query_entities(tenant, probe, limit=1)
        conflict = local_conflict(registration, found)
        if conflict is not None:
            raise conflict


# 5.9.2 Register Context Source
async def create_registration(service: Service, call: Call, data: Any,
                              client_context: Any) -> Reply:
    """201 with Location; 400 invalid, 409 taken id or Conflict (5.9.2.4)."""
    ctx = await service.resolver.active(client_context)
    now = _now()
    registration = parse_registration(
        data, ctx.expand_term, now,
        default_id=f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}")
    tenant = await service.tenant(call, create=True)
    registry = service.registry
    if registry.get(tenant, registration.id, now) is not None \
            or await registry.stored(tenant, registration.id, now):
        raise AlreadyExists(f"registration {registration.id} already exists")
    await _conflicts(service, tenant, registration)
    await service.registry.put(tenant, registration)
    await service.settle()  # 5.11: the registration subscriptions' notifications are stored
    return empty(201, {**_location(registration.id),
                       **await link_only(service, client_context, service.tenant_named(call))})


async def _found(service: Service, call: Call, registration_id: str) -> tuple[str, Registration]:
    _checked_id(registration_id)
    tenant = await service.tenant(call)
    registration = service.registry.get(tenant, registration_id)
    if registration is None:
        raise ResourceNotFound(f"registration {registration_id} not found")
    return tenant, registration


# 5.10.1 Retrieve Context Source Registration
async def retrieve_registration(service: Service, call: Call, registration_id: str) -> Reply:
    """The registration, names compacted with the request's @context."""
    media = negotiate(call.accept, READ_MEDIA)
    sys_attrs = "sysAttrs" in options_of(call.params, frozenset({"sysAttrs"}))
    _, registration = await _found(service, call, registration_id)
    client_context = parse_link_context(call.link)
    ctx = await service.resolver.active(client_context)
    doc = render_registration(registration, ctx.compact_iri, sys_attrs=sys_attrs)
    return await entity_reply(service, doc, media, client_context,
                              tenant=service.tenant_named(call))


# 5.10.2 Query Context Source Registrations
async def query_registrations(service: Service, call: Call) -> Reply:
    """The registrations the query selects, sorted by id, paged (6.3.13), counted."""
    media = negotiate(call.accept, READ_MEDIA)
    settings = service.settings
    opts = options_of(call.params, frozenset({"sysAttrs", "count"}))
    count = flag(call.params, "count") or "count" in opts
    offset, limit = page_of(call.params, count, settings.default_page_size,
                            settings.max_page_size)
    client_context = parse_link_context(call.link)
    ctx = await service.resolver.active(client_context)
    query = registration_query(call.params, ctx.expand_term)
    tenant = await service.tenant(call)
    found = service.registry.matching(tenant, query)
    # 5.10.2.4: the matching registrations, whole
    docs = [render_registration(registration, ctx.compact_iri, sys_attrs="sysAttrs" in opts)
            for registration in found[offset:offset + limit]]
    headers = {RESULTS_COUNT: str(len(found))} if count else {}
    reply = await entity_reply(service, docs, media, client_context, headers=headers,
                               tenant=service.tenant_named(call))
    reply.add_links(subscription_page_links(REGISTRATIONS, call.params, offset, limit,
                                            len(found), media))
    return reply


# 5.9.3 Update Context Source Registration
async def update_registration(service: Service, call: Call, registration_id: str, data: Any,
                              client_context: Any) -> Reply:
    """204; 400 invalid fragment, 404 unknown, 409 Conflict (5.9.3.4)."""
    tenant, registration = await _found(service, call, registration_id)
    ctx = await service.resolver.active(client_context)
    updated = apply_fragment(registration, data, ctx.expand_term, _now())
    if (updated.information, updated.mode) != (registration.information, registration.mode):
        # only what it covers can make a new conflict: a description changed on an
        # exclusive registration whose source's entity is also cached here stays fine
        await _conflicts(service, tenant, updated)
    await service.registry.put(tenant, updated)
    await service.settle()
    return empty(204, await link_only(service, client_context, service.tenant_named(call)))


# 5.9.4 Delete Context Source Registration
async def delete_registration(service: Service, call: Call, registration_id: str) -> Reply:
    """204; 400 not a URI, 404 unknown."""
    tenant, _ = await _found(service, call, registration_id)
    await service.registry.delete(tenant, registration_id)
    await service.settle()
    return empty(204)
