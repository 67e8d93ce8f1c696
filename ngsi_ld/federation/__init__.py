"""Context sources, registrations and distributed operations (ETSI GS CIM 009 v1.9.1).

Clauses 4.3.6 (distributed operations), 5.9 to 5.14 (registrations, discovery,
registration subscriptions, entity maps) and 6.3.17/6.3.18 (warnings, Via).

Pure, like the rest of :mod:`ngsi_ld`: no I/O, and no clock a caller did not
pass in.  Phase 1 of issue 16; the service layer forwards and persists.
"""

from ngsi_ld.federation.document import (
    registration_from_record,
    registration_record,
    render_registration,
)
from ngsi_ld.federation.fragment import apply_fragment
from ngsi_ld.federation.model import (
    DeliveryStatus,
    EntityInfo,
    Management,
    Mode,
    Registration,
    RegistrationInfo,
    TimeInterval,
)
from ngsi_ld.federation.operations import GROUPS, OPERATIONS, supported_operations
from ngsi_ld.federation.registration import check_registration, parse_registration

__all__ = [
    "GROUPS",
    "OPERATIONS",
    "DeliveryStatus",
    "EntityInfo",
    "Management",
    "Mode",
    "Registration",
    "RegistrationInfo",
    "TimeInterval",
    "apply_fragment",
    "check_registration",
    "parse_registration",
    "registration_from_record",
    "registration_record",
    "render_registration",
    "supported_operations",
]
