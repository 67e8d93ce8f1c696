"""What the aiohttp application keeps: the service and what runs beside it.

:class:`Broker` is built once, by the composition root (``broker.app.create_app``),
and kept under :data:`BROKER`; route modules and the explorer read it from
there and never import the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from broker.cluster import ClusterNode
from broker.config import Settings
from broker.contexts import ContextResolver
from broker.events import ChangeBus
from broker.expiry import ExpirySweeper
from broker.federation import DistributedSubscriptions
from broker.metrics import Metrics
from broker.service import KnownVersions, RenderCache, Service
from storage.base import Store
from subscriptions import SubscriptionManager
from subscriptions.registrations import RegistrationSubscriptions

__all__ = [
    "BROKER", "CSOURCE_SUBSCRIPTIONS", "DISTRIBUTED", "MANAGER", "Broker", "broker_of",
    "service_of",
]


@dataclass(slots=True)
class Broker:
    """The service, the @context resolver, and the parts that run beside the requests."""

    service: Service
    resolver: ContextResolver
    subscriptions: SubscriptionManager
    #: set when this process shares its store with others (broker.cluster)
    node: ClusterNode | None = None

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def store(self) -> Store:
        return self.service.store

    @property
    def events(self) -> ChangeBus:
        return self.service.events

    @property
    def metrics(self) -> Metrics:
        return self.service.metrics

    @property
    def expiry(self) -> ExpirySweeper | None:
        return self.service.expiry

    @property
    def started(self) -> float:
        return self.service.started

    @property
    def renders(self) -> RenderCache:
        return self.service.caches.renders

    @property
    def versions(self) -> KnownVersions:
        return self.service.caches.versions


BROKER = web.AppKey("broker", Broker)
MANAGER = web.AppKey("subscriptions", SubscriptionManager)
#: the registration subscriptions (5.11)
CSOURCE_SUBSCRIPTIONS = web.AppKey("csourceSubscriptions", RegistrationSubscriptions)
#: entity subscriptions copied to the registered sources (5.8.1.4)
DISTRIBUTED = web.AppKey("distributedSubscriptions", DistributedSubscriptions)


def broker_of(request: web.Request) -> Broker:
    return request.app[BROKER]


def service_of(request: web.Request) -> Service:
    return request.app[BROKER].service
