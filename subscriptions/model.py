"""Validation of Subscription payloads into the stored form (clauses 5.2.12 to 5.2.15, 5.8).

Pure: a client's JSON object in, the stored document out.  The stored document
keeps the members of the spec with every name expanded to a full IRI (entity
types, ``watchedAttributes``, ``notification.attributes``/``pick``/``omit``,
``geoQ.geoproperty``); ``q`` is kept as the client wrote it, together with the
context it must be resolved with (``_context``).  Members starting with ``_``
are internal and never shown to clients.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from ngsi_ld.attributes import is_iri
from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import (
    TypeName,
    compile_pattern,
    format_type_expr,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)
from ngsi_ld.timeutil import format_datetime, parse_datetime
from subscriptions.endpoints import check_header, check_uri

Expand = Callable[[str], str]

TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted",
            "attributeCreated", "attributeUpdated", "attributeDeleted")
#: 5.2.12: without notificationTrigger, attribute creations and updates notify
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
FORMATS = {"normalized": "normalized", "concise": "concise", "keyValues": "keyValues",
           "simplified": "keyValues"}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
MQTT_VERSIONS = ("mqtt3.1.1", "mqtt5.0")
JOINS = ("flat", "inline", "@none")
#: deepest joinLevel: each level is one more store read per notification
MAX_JOIN = 8
#: shortest timeInterval, seconds: each period queries the store (1e-9 spun a CPU)
MIN_TIME_INTERVAL = 0.1
#: members the broker keeps; a client may send them back (copied from a GET): they are ignored
READ_ONLY = frozenset({"status", "createdAt", "modifiedAt", "deletedAt"})
NOTIFICATION_READ_ONLY = frozenset({"status", "timesSent", "timesFailed", "lastNotification",
                                    "lastSuccess", "lastFailure", "timesDropped"})
_MEMBERS = frozenset({
    "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
    "notificationTrigger", "q", "geoQ", "scopeQ", "lang", "datasetId", "isActive",
    "expiresAt", "throttling", "timeInterval", "jsonldContext", "notification", "localOnly",
    "csf", "temporalQ", "splitEntities",
})
_NOTIFICATION_MEMBERS = frozenset({"attributes", "pick", "omit", "format", "sysAttrs",
                                   "showChanges", "endpoint", "join", "joinLevel"})
_ENDPOINT_MEMBERS = frozenset({"uri", "accept", "timeout", "cooldown", "receiverInfo",
                               "notifierInfo"})


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestData(f"{where} must be true or false, not {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{where} must be a non-empty string, not {value!r}")
    return value


def _positive(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestData(f"{where} must be a positive number, not {value!r}")
    return value


def _names(value: Any, where: str, expand: Expand, *, members: bool = False) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{where} must be a non-empty array of names")
    out = []
    for item in value:
        name = _text(item, f"every item of {where}")
        out.append(name if members and name in ("id", "type", "scope") else expand(name))
    return out


def _entity_selector(raw: Any, index: int, expand: Expand) -> dict[str, Any]:
    where = f"entities[{index}]"
    if not isinstance(raw, dict):
        raise BadRequestData(f"{where} must be an object with type and optionally id or idPattern")
    unknown = set(raw) - {"id", "idPattern", "type"}
    if unknown:
        raise BadRequestData(f"{where} has unknown members: {', '.join(sorted(unknown))}")
    if "type" not in raw:
        raise BadRequestData(f"{where} needs a type")
    type_expr = resolve_names(parse_type_expr(_text(raw["type"], f"{where}.type")), expand)
    out: dict[str, Any] = {"type": format_type_expr(type_expr)}
    if "id" in raw:
        if not is_iri(raw["id"]):
            raise BadRequestData(f"{where}.id must be a URI, not {raw['id']!r}")
        out["id"] = raw["id"]
    if "idPattern" in raw:
        out["idPattern"] = _text(raw["idPattern"], f"{where}.idPattern")
        compile_pattern(out["idPattern"], f"{where}.idPattern")
    return out


def q_text(q: str) -> str:
    """The query a subscription's ``q`` means (4.9): written percent-encoded, as in a URL
    (``name==%22Eiffel%20Tower%22``, as the FIWARE tutorials write it), it is decoded as
    the query string would be; the stored ``q`` stays as the client wrote it."""
    return unquote(q) if "%" in q else q


def _key_values(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise BadRequestData(f"{where} must be an array of {{key, value}} objects")
    out = []
    for item in value:
        if (not isinstance(item, dict) or set(item) != {"key", "value"}
                or not isinstance(item["key"], str) or not isinstance(item["value"], str)):
            raise BadRequestData(f"every item of {where} must be {{\"key\": string, "
                                 f"\"value\": string}}, not {item!r}")
        out.append({"key": item["key"], "value": item["value"]})
    return out


# 5.2.15 Endpoint
def parse_endpoint(raw: Any) -> dict[str, Any]:
    """Validate ``notification.endpoint``."""
    if not isinstance(raw, dict):
        raise BadRequestData("notification.endpoint must be an object with a uri")
    unknown = set(raw) - _ENDPOINT_MEMBERS
    if unknown:
        raise BadRequestData(f"notification.endpoint has unknown members: "
                             f"{', '.join(sorted(unknown))}")
    uri = check_uri(_text(raw.get("uri"), "notification.endpoint.uri"))
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise BadRequestData(f"notification.endpoint.uri {uri!r} is not supported: use an "
                             f"absolute {', '.join(SCHEMES)} URI")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise BadRequestData(f"notification.endpoint.uri {uri!r} has an invalid port") from None
    if parts.scheme.startswith("mqtt") and not parts.path.strip("/"):
        raise BadRequestData(f"notification.endpoint.uri {uri!r} needs a topic: mqtt://host:port/topic")
    out: dict[str, Any] = {"uri": uri}
    if "accept" in raw:
        if raw["accept"] not in ACCEPTS:
            raise BadRequestData(f"notification.endpoint.accept {raw['accept']!r} is not one "
                                 f"of {', '.join(ACCEPTS)}")
        out["accept"] = raw["accept"]
    for name in ("timeout", "cooldown"):
        if name in raw:
            out[name] = _positive(raw[name], f"notification.endpoint.{name}")
    if "receiverInfo" in raw:
        out["receiverInfo"] = _key_values(raw["receiverInfo"], "notification.endpoint.receiverInfo")
        for item in out["receiverInfo"]:
            check_header(item["key"], item["value"], "notification.endpoint.receiverInfo")
    if "notifierInfo" in raw:
        out["notifierInfo"] = _key_values(raw["notifierInfo"], "notification.endpoint.notifierInfo")
        for item in out["notifierInfo"]:
            if item["key"] == "MQTT-QoS" and item["value"] not in ("0", "1", "2"):
                raise BadRequestData(f"MQTT-QoS must be 0, 1 or 2, not {item['value']!r}")
            if item["key"] == "MQTT-Version" and item["value"] not in MQTT_VERSIONS:
                raise BadRequestData(f"MQTT-Version must be one of {', '.join(MQTT_VERSIONS)}, "
                                     f"not {item['value']!r}")
    return out


# 5.2.14 NotificationParams
def parse_notification(raw: Any, expand: Expand, *, partial: bool = False) -> dict[str, Any]:
    """Validate ``notification`` (``partial``: a PATCH fragment, endpoint optional)."""
    if not isinstance(raw, dict):
        raise BadRequestData("notification must be an object with an endpoint")
    unknown = set(raw) - _NOTIFICATION_MEMBERS - NOTIFICATION_READ_ONLY
    if unknown:
        raise BadRequestData(f"notification has unknown members: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "endpoint" in raw:
        out["endpoint"] = parse_endpoint(raw["endpoint"])
    elif not partial:
        raise BadRequestData("notification.endpoint is required")
    if "attributes" in raw:
        out["attributes"] = _names(raw["attributes"], "notification.attributes", expand)
    for name in ("pick", "omit"):
        if name in raw:
            out[name] = _names(raw[name], f"notification.{name}", expand, members=True)
    if "format" in raw:
        if not isinstance(raw["format"], str) or raw["format"] not in FORMATS:
            raise BadRequestData(f"unknown notification.format {raw['format']!r}; use "
                                 "normalized, concise, keyValues or simplified")
        out["format"] = FORMATS[raw["format"]]
    for name in ("sysAttrs", "showChanges"):
        if name in raw:
            out[name] = _bool(raw[name], f"notification.{name}")
    # 4.5.23 Linked Entity retrieval: linked entities flat in data, or inline
    if "join" in raw:
        if raw["join"] not in JOINS:
            raise BadRequestData(f"notification.join must be one of {', '.join(JOINS)}, "
                                 f"not {raw['join']!r}")
        out["join"] = raw["join"]
    if "joinLevel" in raw:
        level = raw["joinLevel"]
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_JOIN:
            raise BadRequestData(f"notification.joinLevel must be an integer from 1 to "
                                 f"{MAX_JOIN}, not {level!r}")
        out["joinLevel"] = level
    return out


def _geo_q(raw: Any, expand: Expand) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequestData("geoQ must be an object with georel, geometry and coordinates")
    missing = [m for m in ("georel", "geometry", "coordinates") if m not in raw]
    if missing:
        raise BadRequestData(f"geoQ needs {', '.join(missing)}")
    unknown = set(raw) - {"georel", "geometry", "coordinates", "geoproperty"}
    if unknown:
        raise BadRequestData(f"geoQ has unknown members: {', '.join(sorted(unknown))}")
    geoproperty = raw.get("geoproperty", "location")
    parse_geo_query(_text(raw["georel"], "geoQ.georel"), _text(raw["geometry"], "geoQ.geometry"),
                    raw["coordinates"], _text(geoproperty, "geoQ.geoproperty"))
    return {"georel": raw["georel"], "geometry": raw["geometry"],
            "coordinates": raw["coordinates"], "geoproperty": expand(geoproperty)}


def parse_members(raw: Any, expand: Expand, now: datetime, *, partial: bool) -> dict[str, Any]:
    """Validate each member of a Subscription (``partial``: a PATCH fragment).

    ``None`` values in a fragment are kept: they remove the member (5.8.2).
    Cross-member rules are :func:`check_subscription`'s job.
    """
    if not isinstance(raw, dict):
        raise BadRequestData("a subscription must be a JSON object")
    unknown = set(raw) - _MEMBERS - READ_ONLY
    if unknown:
        raise BadRequestData(f"unknown subscription members: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in READ_ONLY:
            continue
        if value is None and partial and name not in ("id", "type", "notification"):
            out[name] = None
            continue
        out[name] = _member(name, value, expand, now, partial)
    return out


def _member(name: str, value: Any, expand: Expand, now: datetime, partial: bool) -> Any:
    if name == "id":
        if not is_iri(value):
            raise BadRequestData(f"subscription id must be a URI, not {value!r}")
        return value
    if name == "type":
        if value != "Subscription":
            raise BadRequestData(f"subscription type must be 'Subscription', not {value!r}")
        return value
    if name in ("subscriptionName", "description", "lang"):
        return _text(value, name)
    if name == "entities":
        if not isinstance(value, list) or not value:
            raise BadRequestData("entities must be a non-empty array of entity selectors")
        return [_entity_selector(item, i, expand) for i, item in enumerate(value)]
    if name == "watchedAttributes":
        return _names(value, "watchedAttributes", expand)
    if name == "notificationTrigger":
        if not isinstance(value, list) or not value or any(t not in TRIGGERS for t in value):
            raise BadRequestData(f"notificationTrigger must be a non-empty array of "
                                 f"{', '.join(TRIGGERS)}; got {value!r}")
        return list(dict.fromkeys(value))
    if name == "q":
        parse_q(q_text(_text(value, "q")))
        return value
    if name == "scopeQ":
        parse_scope_q(_text(value, "scopeQ"))
        return value
    if name == "geoQ":
        return _geo_q(value, expand)
    if name == "datasetId":
        if (not isinstance(value, list) or not value
                or not all(v == "@none" or is_iri(v) for v in value)):
            raise BadRequestData("datasetId must be a non-empty array of URIs or '@none'")
        return value
    if name in ("isActive", "localOnly", "splitEntities"):
        return _bool(value, name)
    if name == "expiresAt":
        when = parse_datetime(value, what="expiresAt")
        if when <= now:
            raise BadRequestData(f"expiresAt {value} is in the past")
        return format_datetime(when)
    if name == "timeInterval":
        period = _positive(value, name)
        if period < MIN_TIME_INTERVAL:
            raise BadRequestData(
                f"timeInterval must be at least {MIN_TIME_INTERVAL} s, not {value}"
            )
        return period
    if name == "throttling":
        return _positive(value, name)
    if name == "jsonldContext":
        if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
            raise BadRequestData(f"jsonldContext must be an http(s) URL, not {value!r}")
        return value
    if name == "notification":
        return parse_notification(value, expand, partial=partial)
    if name == "csf":
        raise BadRequestData("csf (context source filter) is not supported on entity "
                             "subscriptions yet (5.8.1.4); registration subscriptions "
                             "(/csourceSubscriptions) take it")
    raise BadRequestData(f"{name} is only for context source registration subscriptions")


# 5.2.12: rules between members
def check_subscription(doc: dict[str, Any]) -> None:
    """Cross-member rules of a complete subscription; BadRequestData names the conflict."""
    if not doc.get("entities") and not doc.get("watchedAttributes"):
        raise BadRequestData("a subscription needs entities or watchedAttributes")
    if "timeInterval" in doc:
        if "watchedAttributes" in doc:
            raise BadRequestData("timeInterval (periodic) cannot be used with watchedAttributes")
        if "throttling" in doc:
            raise BadRequestData("timeInterval (periodic) cannot be used with throttling")
        if not doc.get("entities"):
            raise BadRequestData("a periodic subscription (timeInterval) needs entities")
    notification = doc.get("notification") or {}
    if "endpoint" not in notification:
        raise BadRequestData("notification.endpoint is required")
    if notification.get("showChanges") and notification.get("format") == "keyValues":
        raise BadRequestData("showChanges cannot be used with format keyValues")
    if "pick" in notification and "omit" in notification:
        raise BadRequestData("notification.pick and notification.omit cannot be used together")
    # 4.21: pick and omit project the entity; attributes cannot be combined with either
    for name in ("pick", "omit"):
        if name in notification and "attributes" in notification:
            raise BadRequestData(f"notification.{name} and notification.attributes cannot be "
                                 "used together")


# 5.2.12: type and notification are mandatory (entity and registration subscriptions)
def check_creation(members: dict[str, Any]) -> None:
    """BadRequestData unless the parsed members of a subscription to create (5.8.1,
    5.11.2) have a ``type`` and a ``notification``; an update's fragment need not."""
    for required in ("type", "notification"):
        if required not in members:
            raise BadRequestData(f"a subscription needs {required!r}")


# 5.8.2.4, 5.11.3.4: the fragment of an update
def check_fragment(fragment: dict[str, Any], sub_id: str) -> None:
    """Reduce the parsed fragment of an update of ``sub_id`` to the members it replaces.

    Its ``id``, if given, must be the subscription's (else BadRequestData); ``id`` and
    ``type`` go, since neither changes; BadRequestData when no member is left.
    """
    if fragment.pop("id", sub_id) != sub_id:
        raise BadRequestData("the fragment's id differs from the subscription's")
    fragment.pop("type", None)
    if not fragment:
        raise BadRequestData("the fragment has no member to update")


def merge_fragment(doc: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """5.8.2.4 Update Subscription: each member of the fragment replaces the stored one,
    ``notification`` included (a NotificationParams without an endpoint is then refused
    by :func:`check_subscription`); ``None`` removes a member.

    The delivery members the broker keeps inside ``notification`` (``timesSent``...,
    read-only for clients) survive the replacement.
    """
    merged = dict(doc)
    for name, value in fragment.items():
        if name == "notification":
            kept = doc.get("notification", {})
            merged["notification"] = {
                **{k: kept[k] for k in NOTIFICATION_READ_ONLY if k in kept}, **value
            }
        elif value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def compact_subscription(doc: dict[str, Any], compact: Expand, *, sys_attrs: bool,
                         status: str) -> dict[str, Any]:
    """The client's view of a stored subscription, names compacted (5.8.3)."""
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if name.startswith("_") or (name in ("createdAt", "modifiedAt") and not sys_attrs):
            continue
        if name == "entities":
            value = [{**sel, "type": _compact_types(sel["type"], compact)} for sel in value]
        elif name == "watchedAttributes":
            value = [compact(n) for n in value]
        elif name == "geoQ":
            value = {**value, "geoproperty": compact(value["geoproperty"])}
        elif name == "notification":
            value = dict(value)
            for member in ("attributes", "pick", "omit"):
                if member in value:
                    value[member] = [n if n in ("id", "type", "scope") else compact(n)
                                     for n in value[member]]
        out[name] = value
    out["status"] = status
    return out


def _compact_types(text: str, compact: Expand) -> str:
    expr = parse_type_expr(text)
    if isinstance(expr, TypeName):
        return compact(expr.name)
    return format_type_expr(resolve_names(expr, compact))
