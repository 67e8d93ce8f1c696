"""NGSI-LD subscriptions and notifications (ETSI GS CIM 009 v1.8 clauses 5.8 and 5.11).

Pure parts: :mod:`subscriptions.model` (validation of Subscription payloads),
:mod:`subscriptions.state` (the lifecycle), :mod:`subscriptions.matching`
(change events against subscriptions, the index) and
:mod:`subscriptions.notification` (notification content), with
:mod:`subscriptions.deletions` (deleted entities and attributes) and
:mod:`subscriptions.joins` (linked entities, read through the store).  With I/O:
:mod:`subscriptions.delivery` (HTTP, MQTT, per-subscription queues),
:mod:`subscriptions.repository` (persistence), :mod:`subscriptions.live` (the
running state of one subscription) and :mod:`subscriptions.manager`.
"""

from subscriptions.delivery import Channel, Delivery, DeliveryError, HttpSender, MqttSender
from subscriptions.live import Job, Live, merge_jobs
from subscriptions.manager import SubscriptionManager
from subscriptions.matching import Matcher, Selector, SubscriptionIndex, compile_matcher
from subscriptions.model import (
    DEFAULT_TRIGGERS,
    TRIGGERS,
    check_subscription,
    compact_subscription,
    merge_fragment,
    parse_members,
)
from subscriptions.notification import Rendering, notification_body, notification_headers
from subscriptions.ownership import LeaseOwner, Ownership, SoleOwner
from subscriptions.repository import (
    MemoryRepository,
    Repository,
    StoreRepository,
    repository_for,
)
from subscriptions.state import status_of

__all__ = [
    "DEFAULT_TRIGGERS",
    "TRIGGERS",
    "Channel",
    "Delivery",
    "DeliveryError",
    "HttpSender",
    "Job",
    "LeaseOwner",
    "Live",
    "Matcher",
    "MemoryRepository",
    "MqttSender",
    "Ownership",
    "Rendering",
    "Repository",
    "Selector",
    "SoleOwner",
    "StoreRepository",
    "SubscriptionIndex",
    "SubscriptionManager",
    "check_subscription",
    "compact_subscription",
    "compile_matcher",
    "merge_fragment",
    "merge_jobs",
    "notification_body",
    "notification_headers",
    "parse_members",
    "repository_for",
    "status_of",
]
