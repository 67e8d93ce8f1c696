"""Update Context Source Registration (clause 5.9.3): a fragment merged into a registration.

Each member of the fragment replaces the registration's member; ``null``
removes an optional member; the mandatory members (``id``, ``type``,
``information``, ``endpoint``) can be replaced but never removed.  An ``id``
in the fragment must be the registration's own, a ``type`` must be
``ContextSourceRegistration`` (a fragment "of another data type" is refused,
5.9.3.4).  Additional Context Source Properties are merged one by one.  The
result passes the same rules as a new registration
(:func:`~ngsi_ld.federation.registration.check_registration`), so an update
cannot make, say, an auxiliary registration writable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation.model import Mode, Registration
from ngsi_ld.federation.registration import check_registration, parse_members
from ngsi_ld.timeutil import format_datetime

Expand = Callable[[str], str]


# 5.9.3.4
def apply_fragment(
    registration: Registration, raw: Any, expand: Expand, now: datetime
) -> Registration:
    """The registration updated by the fragment ``raw``; BadRequestData if it is invalid.

    ``now`` refuses an expiresAt in the past and becomes ``modifiedAt``.
    """
    if isinstance(raw, dict) and not any(k != "@context" for k in raw):
        raise BadRequestData("an update fragment needs at least one member to change")
    fields, properties = parse_members(raw, expand, now, partial=True)
    fragment_id = fields.pop("id", registration.id)
    if fragment_id != registration.id:
        raise BadRequestData(f"the fragment's id {fragment_id!r} is not the registration's "
                             f"id {registration.id!r}: an id cannot be changed")
    fields.pop("type", None)
    if "mode" in fields and fields["mode"] is None:
        fields["mode"] = Mode.INCLUSIVE  # removing mode restores the default
    merged = dict(registration.properties)
    for name, value in properties.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    updated = replace(registration, properties=merged, modified_at=format_datetime(now),
                      **fields)
    check_registration(updated)
    return updated


__all__ = ["apply_fragment"]
