"""``ngsi-ld-broker demo``: a generated smart-lampposts city on a live broker.

``cities`` (districts and streets), ``curves`` (daily curves of the readings),
``dataset`` (the entities, deterministic for a seed), ``simulator`` (updates
through the API), ``command`` (the command line).
"""

from broker.demo.cities import CITIES, HONG_KONG, SHANGHAI, City, District, Street
from broker.demo.command import main
from broker.demo.dataset import Lamppost, generate, lampposts
from broker.demo.simulator import BrokerClient, Simulator

__all__ = [
    "CITIES",
    "HONG_KONG",
    "SHANGHAI",
    "BrokerClient",
    "City",
    "District",
    "Lamppost",
    "Simulator",
    "Street",
    "generate",
    "lampposts",
    "main",
]
