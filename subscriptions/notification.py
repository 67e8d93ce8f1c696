"""The content of a notification (clause 5.3.1 Notification, 5.2.14 NotificationParams).

Pure.  :class:`Rendering` is what a subscription says about the entities it
sends (attributes, pick/omit, format, sysAttrs, lang, showChanges, GeoJSON);
:func:`notification_body` wraps the rendered entities.  Choices:

* deleted entities, attributes and attribute instances are NGSI-LD Nulls, as
  :mod:`subscriptions.deletions` describes;
* in JSON-LD (``application/ld+json``) every entity carries the ``@context``;
* ``showChanges`` adds the previous main member of every updated or deleted
  attribute instance (``previousValue``, ``previousObject``, ``previousLanguageMap``,
  ``previousVocab``, ``previousJson``, ``previousValueList``, ``previousObjectList``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from ngsi_ld.changes import ChangeEvent
from ngsi_ld.geojson import is_geometry
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.representation import render_entity, select_attributes, to_feature
from subscriptions.deletions import deleted_entity, with_deletions

GEO_JSON = "application/geo+json"
LD_JSON = "application/ld+json"
_PREVIOUS = {
    "Property": "previousValue",
    "GeoProperty": "previousValue",
    "Relationship": "previousObject",
    "LanguageProperty": "previousLanguageMap",
    "VocabProperty": "previousVocab",
    "JsonProperty": "previousJson",
    "ListProperty": "previousValueList",
    "ListRelationship": "previousObjectList",
}


@dataclass(frozen=True, slots=True)
class Rendering:
    """How one subscription renders entities; names are expanded IRIs."""

    ctx: ActiveContext
    accept: str = "application/json"
    fmt: Literal["normalized", "concise", "keyValues"] = "normalized"
    sys_attrs: bool = False
    lang: str | None = None
    attrs: frozenset[str] | None = None
    pick: frozenset[str] | None = None
    omit: frozenset[str] | None = None
    dataset_ids: tuple[str, ...] | None = None
    show_changes: bool = False
    #: deleted attributes are shown in updates (attributeDeleted or entityUpdated)
    deleted_attrs: bool = False
    #: a deleted entity is shown with its attributes (attributeDeleted or showChanges)
    attrs_of_deleted: bool = False
    watched: frozenset[str] | None = None
    geometry_property: str = "https://uri.etsi.org/ngsi-ld/location"

    @classmethod
    def of(cls, doc: dict[str, Any], ctx: ActiveContext) -> Rendering:
        """The rendering a stored subscription asks for, compacted with ``ctx``."""
        n = doc["notification"]

        def names(member: str) -> frozenset[str] | None:
            return frozenset(n[member]) if member in n else None

        triggers = doc.get("notificationTrigger") or ()
        return cls(
            ctx=ctx,
            accept=n["endpoint"].get("accept", "application/json"),
            fmt=n.get("format", "normalized"),
            sys_attrs=bool(n.get("sysAttrs")),
            lang=doc.get("lang"),
            attrs=names("attributes"),
            pick=names("pick"),
            omit=names("omit"),
            dataset_ids=tuple(doc["datasetId"]) if "datasetId" in doc else None,
            show_changes=bool(n.get("showChanges")),
            deleted_attrs="attributeDeleted" in triggers or "entityUpdated" in triggers,
            attrs_of_deleted="attributeDeleted" in triggers or bool(n.get("showChanges")),
            watched=frozenset(doc["watchedAttributes"]) if "watchedAttributes" in doc else None,
            geometry_property=ctx.expand_term("location"),
        )

    def select(self, entity: Entity) -> Entity:
        """The members of ``entity`` the subscription shows (attributes, pick, omit, datasetId)."""
        if self.attrs is None and self.pick is None and self.omit is None \
                and self.dataset_ids is None:
            return entity
        return select_attributes(entity, attrs=self.attrs, pick=self.pick, omit=self.omit,
                                 dataset_ids=self.dataset_ids)

    def entity(self, entity: Entity) -> dict[str, Any]:
        """One entity in its current state."""
        compacted = self.ctx.compact_entity(self.select(entity))
        if self.accept == GEO_JSON:
            feature = to_feature(compacted, fmt=self.fmt, sys_attrs=self.sys_attrs,
                                 lang=self.lang,
                                 geometry_property=self.ctx.compact_iri(self.geometry_property))
            if not is_geometry(feature["geometry"]):  # a deleted location is no geometry
                feature["geometry"] = None
            return feature
        return render_entity(compacted, fmt=self.fmt, sys_attrs=self.sys_attrs, lang=self.lang)

    def change(self, event: ChangeEvent, now_iso: str) -> dict[str, Any]:
        """One entity as a change event leaves it, with what the subscription asks about it.

        Deleted attributes and instances are NGSI-LD Nulls (``subscriptions.deletions``)
        when the subscription watches deletions; ``showChanges`` adds the previous main
        member of every updated or deleted instance.
        """
        if event.after is None:
            entity = deleted_entity(event, deleted_at=now_iso,
                                    attributes=self.attrs_of_deleted, only=self.watched)
        elif self.deleted_attrs:
            entity = with_deletions(event, now_iso)
        else:
            entity = event.after
        rendered = self.entity(entity)
        target = rendered["properties"] if self.accept == GEO_JSON else rendered
        if event.after is None:
            target["deletedAt"] = now_iso  # 5.8.6: when the entity was deleted
        if self.show_changes:
            names = event.attributes if event.after is not None else entity["attrs"]
            for name in names:
                short = self.ctx.compact_iri(name)
                if event.attributes.get(name) != "attributeCreated" and short in target:
                    target[short] = self._with_previous(target[short], name, event)
        return rendered

    def _previous(self, name: str, event: ChangeEvent) -> dict[Any, dict[str, Any]]:
        before = self.ctx.compact_attrs({name: (event.before or {}).get("attrs", {}).get(name, [])})
        return {inst.get("datasetId"): inst for inst in next(iter(before.values()), [])}

    def _with_previous(self, rendered: Any, name: str, event: ChangeEvent) -> Any:
        previous = self._previous(name, event)
        items = rendered if isinstance(rendered, list) else [rendered]
        out = []
        for item in items:
            if not isinstance(item, dict):  # a concise bare value
                item = {"value": item}
            old = previous.get(item.get("datasetId"))
            if old is not None:
                item = {**item, _PREVIOUS[old["type"]]: old[MAIN_MEMBER[old["type"]]]}
            out.append(item)
        return out if isinstance(rendered, list) else out[0]


def notification_body(subscription_id: str, data: list[dict[str, Any]], accept: str,
                      now_iso: str, body_context: Any = None) -> dict[str, Any]:
    """The Notification (5.3.1); GeoJSON data as a FeatureCollection.

    JSON-LD (5.8.6): every entity of ``data`` carries the ``@context`` (so that each one
    can be read alone, as an entity retrieved as JSON-LD), and so does the notification.
    """
    body: dict[str, Any] = {}
    if accept == LD_JSON:
        body["@context"] = body_context
        data = [{**entity, "@context": body_context} for entity in data]
    body.update({
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "Notification",
        "subscriptionId": subscription_id,
        "notifiedAt": now_iso,
        "data": {"type": "FeatureCollection", "features": data} if accept == GEO_JSON else data,
    })
    return body


def notification_headers(accept: str, link_url: str, tenant: str,
                         receiver_info: list[dict[str, str]] | None) -> dict[str, str]:
    """HTTP headers (or MQTT metadata) of a notification: Content-Type, Link for JSON and
    GeoJSON (6.3.5), NGSILD-Tenant, and every ``receiverInfo`` entry."""
    headers = {"Content-Type": accept}
    if accept != LD_JSON:
        headers["Link"] = (f'<{link_url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                           f'type="application/ld+json"')
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    for item in receiver_info or ():
        # one line per header: a receiverInfo entry replaces the broker's of the same name
        # whatever its case (two Content-Type lines are as malformed as two Content-Length)
        lowered = item["key"].lower()
        for name in [n for n in headers if n.lower() == lowered]:
            del headers[name]
        headers[item["key"]] = item["value"]
    return headers


__all__ = ["Rendering", "notification_body", "notification_headers"]
