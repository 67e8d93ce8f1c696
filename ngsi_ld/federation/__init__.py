"""Context sources, registrations and distributed operations (ETSI GS CIM 009 v1.9.1).

Clauses 4.3.6 (distributed operations), 5.9 to 5.14 (registrations, discovery,
registration subscriptions, entity maps) and 6.3.17/6.3.18 (warnings, Via).

Pure, like the rest of :mod:`ngsi_ld`: no I/O, and no clock a caller did not
pass in.  Phase 1 of issue 16; the service layer forwards and persists.
"""
