"""Writes of the common shape on a short path: 5.6.1, 5.6.2, 5.6.3 and 5.6.4 (issue 19).

Most writes are a JSON or JSON-LD body sent with no query parameter to a tenant
already known, which no context source serves.  For them the general path
(``broker.service.entities``) works out, on every request, what they do not
need: a :class:`~broker.service.core.Call` of every header and parameter, the
options (none), the ``type`` selector (4.17; none), whether the tenant must be
created or checked in the store (known), the plan of the registered sources
(4.3.6; none), the folding of their parts into the reply (none).  The adapter
(``broker.routes.entities``) decides the shape before the body is read; a
request of another shape goes down the general path as it is.

The functions here run the steps the general path runs for such a request, in
its order and through its helpers (the body's @context compiled by the
resolver, ``fragment_of``/``attribute_of``/``parse_checked``, the mutations of
``ngsi_ld.operations``, :meth:`Service.commit`, the replies of
``broker.service.entities``): the same status, headers and ProblemDetails, the
same change published to the subscriptions (``tests/test_direct_writes.py``
sends the same requests down both paths and compares).  An update's body of
attributes only is read through the template of its shape
(``ngsi_ld.shapes.expanded_attrs``), which gives what ``fragment_of`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.service.core import Service
from broker.service.entities import (
    attribute_of,
    attrs_result,
    created,
    fragment_of,
    location_of,
    no_content,
    object_of,
    unlinked,
)
from broker.service.reply import Reply
from ngsi_ld import attribute_ops, operations
from ngsi_ld.bodies import Body
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.headers import tenant_name
from ngsi_ld.shapes import expanded_attrs, parse_checked
from ngsi_ld.timeutil import now_iso

__all__ = ["DirectWrites", "append_attrs", "create_entity", "patch_attr", "update_attrs"]


@dataclass(slots=True)
class DirectWrites:
    """Whether writes of the common shape take the short path, and how many took it."""

    #: False: every write takes the general path (what the tests compare it with)
    enabled: bool = True
    #: writes that took the short path (whatever they were answered)
    served: int = 0

    def tenant(self, service: Service, ngsild_tenant: str | None,
               fiware_service: str | None) -> str | None:
        """The tenant the tenant headers name (6.3.14) when a write to it may take the
        short path: already known, no source serving it; else None (the general path,
        which also answers a bad or unknown name, in its order)."""
        if not self.enabled:
            return None
        if ngsild_tenant is None and fiware_service is None:
            tenant = ""  # the default tenant (what tenant_name gives), always known
        else:
            try:
                tenant = tenant_name(ngsild_tenant, fiware_service,
                                     service.settings.multi_tenancy)
            except NgsiLdError:
                return None
            if not service.known_tenant(tenant):
                return None
        if service.sources.serves(tenant):
            return None
        self.served += 1
        return tenant


# 5.6.1 Create Entity
async def create_entity(service: Service, tenant: str, body: Body) -> Reply:
    """Create Entity of the common shape in ``tenant`` (see the module docstring)."""
    # a kept compiled context read without a coroutine (every write has one)
    context, resolver = body.client_context, service.resolver
    ctx = resolver.kept(context) or await resolver.active(context)
    now = now_iso()
    # a template's entity comes stamped at ``now`` and free of the Null (its own parse);
    # one made the usual way is this write's own too: stamped without a copy
    entity, made = parse_checked(ctx, object_of(body.data), key_values=False, now=now)
    await service.commit(tenant, entity["id"],
                         operations.create_entity(entity, now, owned=True,
                                                  check_nulls=not made, stamped=made),
                         at=now)
    return unlinked(context, 201, location_of(entity["id"])) \
        or await created(service, entity["id"], context, tenant)


# 5.6.2 Update Entity Attributes
async def update_attrs(service: Service, tenant: str, entity_id: str, body: Body) -> Reply:
    """Update Entity Attributes of the common shape (see the module docstring)."""
    context, resolver = body.client_context, service.resolver
    ctx = resolver.kept(context) or await resolver.active(context)
    # a body of attributes only through the template of its shape (fragment_of's result)
    fragment = expanded_attrs(ctx, body.data)
    if fragment is None:
        fragment = fragment_of(ctx, body.data, entity_id, key_values=False, allow_null=True)
    now = now_iso()
    mutation = operations.update_attributes(entity_id, fragment, now)
    await service.commit(tenant, entity_id, mutation, at=now)
    return (None if mutation.result.not_updated else unlinked(context, 204)) \
        or await attrs_result(service, context, tenant, mutation)


# 5.6.3 Append Entity Attributes
async def append_attrs(service: Service, tenant: str, entity_id: str, body: Body) -> Reply:
    """Append Entity Attributes of the common shape: no ``noOverwrite`` option."""
    context, resolver = body.client_context, service.resolver
    ctx = resolver.kept(context) or await resolver.active(context)
    fragment = fragment_of(ctx, body.data, entity_id, key_values=False)
    now = now_iso()
    mutation = operations.append_attributes(entity_id, fragment, now, no_overwrite=False)
    await service.commit(tenant, entity_id, mutation, at=now)
    return await attrs_result(service, body.client_context, tenant, mutation)


# 5.6.4 Partial Attribute Update
async def patch_attr(service: Service, tenant: str, entity_id: str, attr: str,
                     body: Body) -> Reply:
    """Partial Attribute Update of the common shape (see the module docstring)."""
    context, resolver = body.client_context, service.resolver
    ctx = resolver.kept(context) or await resolver.active(context)
    name, fragment = attribute_of(ctx, body.data, attr, key_values=False, allow_null=True,
                                  fragment=True)
    now = now_iso()
    await service.commit(tenant, entity_id,
                         attribute_ops.update_attribute(entity_id, name, fragment, now), at=now)
    return unlinked(context, 204) or await no_content(service, context, tenant)
