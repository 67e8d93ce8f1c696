"""The lifecycle of a subscription as a state machine (clauses 5.2.12 and 5.2.14).

Subscription ``status`` (derived, never stored):

==========  =====================================  =========================
state       when                                   notifies
==========  =====================================  =========================
active      isActive is true and not expired       yes
paused      isActive is false and not expired      no (changes are ignored)
expired     expiresAt is now or in the past        no, whatever isActive says
==========  =====================================  =========================

Transitions:

* PATCH ``isActive: false``: active -> paused; ``isActive: true``: paused -> active.
* time reaching ``expiresAt``: active or paused -> expired.
* PATCH of ``expiresAt`` to a future instant (or removing it): expired -> active
  or paused, following ``isActive``.

Notification ``status`` (stored in ``notification``; absent until the first attempt):

* a notification handed to the endpoint: ``timesSent``+1 and ``lastNotification``
  as it is sent, before the answer (a subscriber that retrieves the subscription
  as soon as the notification arrives sees it counted: 5.8.6, ETSI 046_11);
* a delivery that succeeds: -> ``ok``; ``lastSuccess``;
* a delivery that fails after its retries (timeout, refused connection, non-2xx,
  or a notification dropped because the subscription's queue was full):
  -> ``failed``; ``timesFailed``+1, ``lastFailure`` (and ``timesDropped``+1 when
  it was never sent).

Failures do not change the subscription's status: v1.8 has no "failed"
subscription status; a failing endpoint stays subscribed and its later
notifications are attempted (after ``endpoint.cooldown`` if given).
"""

from __future__ import annotations

from typing import Any, Literal

from ngsi_ld.timeutil import parse_datetime

Status = Literal["active", "paused", "expired"]
ACTIVE: Status = "active"
PAUSED: Status = "paused"
EXPIRED: Status = "expired"


def status_of(doc: dict[str, Any], now_iso: str) -> Status:
    """The subscription's status at ``now_iso`` (an ISO 8601 UTC timestamp)."""
    expires = doc.get("expiresAt")
    if expires is not None and parse_datetime(expires) <= parse_datetime(now_iso):
        return EXPIRED
    return ACTIVE if doc.get("isActive", True) else PAUSED


#: the members of ``notification`` that deliveries update (kept by the delivering process)
DELIVERY_MEMBERS = ("status", "timesSent", "timesFailed", "timesDropped", "lastNotification",
                    "lastSuccess", "lastFailure")


def keep_delivery_state(source: dict[str, Any], target: dict[str, Any]) -> None:
    """Copy the delivery members of ``source`` into ``target`` (a newer definition)."""
    old, new = source.get("notification", {}), target.get("notification")
    if isinstance(new, dict):
        for name in DELIVERY_MEMBERS:
            if name in old:
                new[name] = old[name]
            else:
                new.pop(name, None)


def record_attempt(doc: dict[str, Any], now_iso: str) -> None:
    """A notification is being sent (counted before its answer arrives)."""
    notification = doc["notification"]
    notification["timesSent"] = notification.get("timesSent", 0) + 1
    notification["lastNotification"] = now_iso


def record_success(doc: dict[str, Any], now_iso: str) -> None:
    """A notification sent (:func:`record_attempt`) was delivered."""
    notification = doc["notification"]
    notification["status"] = "ok"
    notification["lastSuccess"] = now_iso


def record_failure(doc: dict[str, Any], now_iso: str, *, attempted: bool = True) -> None:
    """A notification sent (:func:`record_attempt`) failed; ``attempted=False``: one
    dropped before any attempt."""
    notification = doc["notification"]
    notification["status"] = "failed"
    notification["timesFailed"] = notification.get("timesFailed", 0) + 1
    notification["lastFailure"] = now_iso
    if not attempted:
        notification["timesDropped"] = notification.get("timesDropped", 0) + 1


__all__ = ["ACTIVE", "DELIVERY_MEMBERS", "EXPIRED", "PAUSED", "Status", "keep_delivery_state",
           "record_attempt", "record_failure", "record_success", "status_of"]
