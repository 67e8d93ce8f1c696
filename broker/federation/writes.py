"""Distributed writes (5.6.x.4, 4.3.6): a write sent to the sources its registrations
name, batches one request per source, and the parts folded into 204/201, the one
error, or 207 with the failed parts naming their ``registrationId``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from broker.federation.base import (
    ATTRIBUTE_OPS,
    SourcesBase,
    WriteJob,
    hops_of,
    names_all,
    relayed_warnings,
)
from broker.federation.client import Incoming, Outgoing
from broker.federation.wire import (
    API,
    base_url,
    restrict_body,
    write_method,
)
from broker.service.call import Call
from broker.service.ports import BatchParts, Plan
from broker.service.reply import Reply, json_reply
from ngsi_ld.errors import ServiceUnavailable
from ngsi_ld.federation import (
    PartResult,
    Registration,
    WritePlan,
    append_via,
    forward_headers,
    group_batch,
    guard_loop,
    plan_write,
    source_warning,
    visited,
    write_outcome,
)
from ngsi_ld.federation.operations import table_operation
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.params import flag

__all__ = ["Writes"]

#: the client's parameters a forwarded write carries: the representation, the type
#: selector (4.17), and which instances of an attribute a deletion removes (5.6.5, 5.6.13)
_PASSED = ("options", "type", "datasetId", "deleteAll")


class Writes(SourcesBase):
    """The write half of :class:`~broker.federation.FederatedSources`."""

    async def forward(self, tenant: str, operation: str, entity_id: str, body: Any,
                      plan: Plan, call: Call) -> Sequence[Any]:
        job = plan.remote[0]
        assert isinstance(job, WriteJob)
        wplan = job.plan
        parts: list[PartResult] = [PartResult(r.registration.id, r.error().to_problem())
                                   for r in wplan.refusals]
        if not wplan.forwards:
            return parts
        client_context = body.get("@context") if isinstance(body, dict) else None
        if client_context is None:
            client_context = parse_link_context(call.link)
        ctx = await self.resolver.active(client_context)
        context_url = await self._context(client_context, tenant)
        via = append_via(job.hops, job.alias)
        path = call.path[len(API):] if call.path.startswith(API) else call.path
        passed = [(k, v) for k, v in call.params.items() if k in _PASSED]
        query = f"?{urlencode(passed)}" if passed else ""
        method = write_method(wplan.operation)
        requests: list[Outgoing] = []
        for fwd in wplan.forwards:
            data = None if method == "DELETE" else (
                body if wplan.operation in ATTRIBUTE_OPS else restrict_body(body, fwd.attrs, ctx))
            if isinstance(data, dict) and "@context" in data:
                data = {k: v for k, v in data.items() if k != "@context"}
            outbound = forward_headers(fwd.registration, via=via, context_url=context_url,
                                       incoming=call.headers, has_body=data is not None)
            payload = None
            if data is not None:
                if outbound.inline_context and outbound.context_url is not None \
                        and isinstance(data, dict):
                    data = {**data, "@context": outbound.context_url}
                payload = orjson.dumps(data)
            url = base_url(fwd.registration.endpoint) + API + path + query
            requests.append(Outgoing(method, url, outbound.headers, payload,
                                     self._deadline(fwd.registration)))
        answers = await self.client.send_all(requests)
        for fwd, incoming in zip(wplan.forwards, answers, strict=True):
            registration = fwd.registration
            call.warnings.extend(relayed_warnings(incoming))
            parts.append(PartResult(registration.id, _write_error(registration, incoming),
                                    created=incoming.status == 201))
            self._delivered(tenant, registration, incoming.status is not None)
            if incoming.status is None:
                text = source_warning(registration, job.alias, timed_out=True)
                if text:
                    call.warnings.append(text)
        return parts

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Entity | None, Any]],
                            call: Call) -> BatchParts:
        everything = frozenset(range(len(items)))
        table = table_operation(operation)
        registrations = () if table is None or flag(call.params, "local") else \
            self.registrations.of(tenant, self.clock())
        if not registrations:
            return BatchParts(everything)
        hops = hops_of(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        now = self.clock()
        assert table is not None
        plans: list[WritePlan] = []
        for entity_id, entity, _ in items:
            attrs = None if entity is None else list((entity.get("attrs") or {}).keys())
            types = None if entity is None or not entity.get("type") else list(entity["type"])
            plans.append(plan_write(table, entity_id, registrations, attrs=attrs, types=types,
                                    now=now, visited=seen))
        errors: list[dict[str, Any]] = [
            {"entityId": items[i][0], "error": r.error().to_problem(),
             "registrationId": r.registration.id}
            for i, wplan in enumerate(plans) for r in wplan.refusals]
        groups = group_batch(plans)
        if groups and not guard_loop(alias, hops, [g.registration.mode.proxied for g in groups]):
            return BatchParts(everything)
        via = append_via(hops, alias)
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context, tenant)
        passed = [(k, v) for k, v in call.params.items() if k == "options"]
        query = f"?{urlencode(passed)}" if passed else ""
        requests: list[Outgoing] = []
        for group in groups:
            if table == "deleteBatch":
                payload: list[Any] = [items[i][0] for i, _ in group.items]
            else:
                payload = [restrict_body(items[i][2], attrs, await self._item_context(items[i][2],
                                                                                      ctx))
                           for i, attrs in group.items]
            contexts = [items[i][2].get("@context") if isinstance(items[i][2], dict) else None
                        for i, _ in group.items]
            shared_context = context_url
            if contexts and contexts[0] is not None and all(c == contexts[0] for c in contexts):
                # one @context for every element: named once, in the Link header (6.3.5)
                shared_context = await self._context(contexts[0], tenant)
                contexts = [None] * len(contexts)
            outbound = forward_headers(group.registration, via=via, context_url=shared_context,
                                       incoming=call.headers, has_body=True)
            headers = outbound.headers
            if any(c is not None for c in contexts) and table != "deleteBatch":
                # elements that carry their own @context (6.3.5) travel as JSON-LD with it
                payload = [{**p, "@context": items[i][2].get("@context", context_url)}
                           if isinstance(p, dict) else p
                           for p, (i, _) in zip(payload, group.items, strict=True)]
                headers = tuple((k, v) for k, v in headers if k not in ("Link", "Content-Type"))
                headers += (("Content-Type", "application/ld+json"),)
            elif outbound.inline_context and outbound.context_url is not None:
                payload = [{**p, "@context": outbound.context_url} if isinstance(p, dict) else p
                           for p in payload]
            url = (base_url(group.registration.endpoint) + API + "/entityOperations/"
                   + _BATCH_PATHS[table] + query)
            requests.append(Outgoing("POST", url, headers, orjson.dumps(payload),
                                     self._deadline(group.registration)))
        forwarded: list[str] = []
        for group, incoming in zip(groups, await self.client.send_all(requests), strict=True):
            ids = [items[i][0] for i, _ in group.items]
            call.warnings.extend(relayed_warnings(incoming))
            self._delivered(tenant, group.registration, incoming.status is not None)
            failed = _batch_errors(group.registration, ids, incoming)
            errors += failed
            gone = {e["entityId"] for e in failed}
            forwarded += [i for i in ids if i not in gone]
        local = frozenset(i for i, wplan in enumerate(plans) if wplan.local)
        return BatchParts(local, tuple(errors), tuple(dict.fromkeys(forwarded)))

    async def _item_context(self, item: Any, shared: ActiveContext) -> ActiveContext:
        """The @context a batch element is written in (its own, 6.3.5, else the request's)."""
        if isinstance(item, dict) and "@context" in item:
            return await self.resolver.active(item["@context"])
        return shared

    def outcome(self, plan: Plan, local: Reply | None, parts: Sequence[Any]) -> Reply:
        job = plan.remote[0]
        assert isinstance(job, WriteJob)
        results: list[PartResult] = [p for p in parts if isinstance(p, PartResult)]
        if local is not None:
            error = None
            if local.status >= 400:
                error = orjson.loads(local.body) if local.body else {"status": local.status}
            # an attribute the broker does not hold, written by a source that registered
            # it by name, is not a failed part: an IoT Agent's command attribute exists
            # at the agent only (inclusive, 4.3.6.2); anything else missing here is
            # (D005_01_inc, D002_02_02_inc: 207)
            took = {p.registration_id for p in results
                    if p.registration_id is not None and p.error is None}
            taken = any(f.registration.id in took and names_all(f.registration, f.attrs)
                        for f in job.plan.forwards)
            if not (local.status == 404 and taken):
                results.insert(0, PartResult(None, error))
            else:
                local = None
        if job.plan.operation in _INSTANCE_OPS:
            results = _instance_parts(results)
        folded = write_outcome(results)
        if folded.status == 0:
            if local is not None and local.status < 300:
                return local
            if job.plan.operation == "createEntity":
                return Reply(201, headers={"Location": f"{API}/entities/{job.entity_id}"})
            if job.plan.operation == "upsertTemporal" and any(p.created for p in results):
                # 5.6.11.4: created at a source (the broker keeps no part of it)
                return Reply(201, headers={
                    "Location": f"{API}/temporal/entities/{job.entity_id}"})
            return Reply(204)
        if folded.status != 207:
            error = folded.errors[0].error or {}
            return json_reply(error, status=folded.status,
                              content_type="application/json")
        body = {
            "success": [] if local is None or local.status >= 400 else [job.entity_id],
            "errors": [
                {"entityId": job.entity_id, "error": part.error,
                 **({"registrationId": part.registration_id}
                    if part.registration_id is not None else {})}
                for part in folded.errors
            ],
        }
        return json_reply(body, status=207)


#: the writes of one instance (5.6.14, 5.6.15), which each party names by its own instanceId
_INSTANCE_OPS = frozenset({"updateAttrInstanceTemporal", "deleteAttrInstanceTemporal"})


def _instance_parts(results: list[PartResult]) -> list[PartResult]:
    """The parts of a write of one instance that count: instanceIds are each party's own,
    so a party answering 404 beside one that had the instance did not fail; when none
    had it, the answer is the one 404 (the broker's own first)."""
    missing = [p for p in results if p.error is not None and p.error.get("status") == 404]
    if len(missing) == len(results):
        return results[:1]
    return [p for p in results if p not in missing]


#: Table 4.20-1 batch operations -> the path of their binding (6.14 to 6.18, 6.31)
_BATCH_PATHS = {"createBatch": "create", "upsertBatch": "upsert", "updateBatch": "update",
                "deleteBatch": "delete", "mergeBatch": "merge"}


def _batch_errors(registration: Registration, ids: Sequence[str],
                  incoming: Incoming) -> list[dict[str, Any]]:
    """The BatchEntityErrors (5.2.17) of one source's part of a batch, naming it."""
    status = incoming.status
    if status is not None and 200 <= status < 300 and status != 207:
        return []
    found: list[dict[str, Any]] = []
    if status == 207:
        try:
            data = orjson.loads(incoming.body)
        except orjson.JSONDecodeError:
            data = None
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list):
            found = [{**e, "registrationId": registration.id} for e in errors
                     if isinstance(e, dict) and isinstance(e.get("entityId"), str)]
            return found
    error = _write_error(registration, incoming) or {}
    return [{"entityId": i, "error": error, "registrationId": registration.id} for i in ids]


def _write_error(registration: Registration, incoming: Incoming) -> dict[str, Any] | None:
    """None when the source took its part of a write, else the ProblemDetails of the part."""
    status = incoming.status
    if status is not None and 200 <= status < 300 and status != 207:
        return None
    if status is not None and incoming.body:
        try:
            data = orjson.loads(incoming.body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "type" in data:
            return {**data, "status": data.get("status", status)}
    detail = (f"context source registration {registration.id} at {registration.endpoint} "
              + (f"answered {status}" if status is not None else incoming.reason or "failed"))
    problem = ServiceUnavailable(detail).to_problem()
    if status is not None and status >= 400:
        problem["status"] = status
    return problem

