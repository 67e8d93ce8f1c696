"""Distributed operations over HTTP (ETSI GS CIM 009 clause 4.3.6): the Sources seam filled.

The pure part (registrations, matching, merge, headers) is
:mod:`ngsi_ld.federation`; this package does the I/O:

- ``registry``: where a tenant's registrations are read from (a Protocol);
- ``policy``: whether a URL may be called (the one place an outbound policy plugs in);
- ``client``: the pooled forwarding client, deadlines and size caps;
- ``wire``: forwarded requests built, sources' answers read;
- ``sources``: :class:`FederatedSources`, the service's ``Sources`` (planning), with
  ``reads`` (fetch, merge), ``writes`` (forward, batches, outcome) and ``base``;
- ``subscriptions``: :class:`DistributedSubscriptions`, entity subscriptions copied
  to the sources (5.8.1.4).
"""

from broker.federation.client import MAX_ANSWER_BYTES, ForwardingClient, Incoming, Outgoing
from broker.federation.policy import refusal
from broker.federation.registry import MemoryRegistrations, RegistrationSource
from broker.federation.sources import FederatedSources, ReadJob, WriteJob
from broker.federation.subscriptions import CSOURCE_NOTIFY, REMOTE_NOTIFY, DistributedSubscriptions

__all__ = [
    "CSOURCE_NOTIFY",
    "MAX_ANSWER_BYTES",
    "REMOTE_NOTIFY",
    "DistributedSubscriptions",
    "FederatedSources",
    "ForwardingClient",
    "Incoming",
    "MemoryRegistrations",
    "Outgoing",
    "ReadJob",
    "RegistrationSource",
    "WriteJob",
    "refusal",
]
