"""The generated data set: lampposts, their three observed entities, the open datasets.

``generate(city, size, seed, when)`` returns NGSI-LD entities (normalized, each
with its Smart Data Models @context), the same for the same arguments:

* ``size`` Streetlights spread evenly over the city's districts, along its
  streets, alternately on either side, each with ``refDevice`` naming its three
  sensor feeds;
* per lamppost an AirQualityObserved, a WeatherObserved and a
  TrafficFlowObserved at the lamppost's location, with readings of ``when``;
* a DCAT-AP Catalogue of the city's open data, a Dataset per kind of entity
  and two Distributions per Dataset (the NGSI-LD API, GeoJSON).

:class:`Lamppost` keeps what the simulator needs to update the readings later.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from broker.demo.cities import City, District, Point
from broker.demo.curves import Moment, Readings, readings
from broker.smartdatamodels import context_url

#: an entity as the demo posts it: NGSI-LD JSON, compacted names
EntityBody = dict[str, Any]
OBSERVED = ("AirQualityObserved", "WeatherObserved", "TrafficFlowObserved")
#: metres a lamppost stands from the street's centre line
KERB = 9.0
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class Lamppost:
    """One lamppost of the data set and the ids of its entities."""

    city: City
    district: District
    street: str
    number: int
    point: Point
    busyness: float
    power_rating: float

    @property
    def key(self) -> str:
        return f"{self.city.code}:{self.district.code}:{self.number:04d}"

    def entity_id(self, entity_type: str = "Streetlight") -> str:
        return f"urn:ngsi-ld:{entity_type}:{self.key}"


def _length(a: Point, b: Point) -> float:
    """Metres between two nearby points (equirectangular)."""
    dx = (b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot(dx, b[1] - a[1]) * _METRES_PER_DEGREE


def _place(district: District, count: int, rng: random.Random) -> list[tuple[str, Point]]:
    """``count`` positions evenly spaced along the district's streets, either side."""
    segments = [(street.name, a, b) for street in district.streets
                for a, b in zip(street.line, street.line[1:], strict=False)]
    lengths = [_length(a, b) for _, a, b in segments]
    total = sum(lengths)
    placed: list[tuple[str, Point]] = []
    for index in range(count):
        target = (index + 0.5) * total / count
        for (name, a, b), length in zip(segments, lengths, strict=True):
            if target <= length or (name, a, b) == segments[-1]:
                t = min(1.0, target / length) if length else 0.0
                x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
                side = KERB * (1 if index % 2 else -1) + rng.uniform(-2, 2)
                # perpendicular offset, in degrees
                nx, ny = -(b[1] - a[1]), (b[0] - a[0]) * math.cos(math.radians(y))
                norm = math.hypot(nx, ny) or 1.0
                dx = side * nx / norm / _METRES_PER_DEGREE / math.cos(math.radians(y))
                dy = side * ny / norm / _METRES_PER_DEGREE
                placed.append((name, (round(x + dx, 6), round(y + dy, 6))))
                break
            target -= length
    return placed


def lampposts(city: City, size: int, seed: int) -> list[Lamppost]:
    """The city's ``size`` lampposts, district by district."""
    rng = random.Random(f"{seed}:{city.code}")
    share, extra = divmod(size, len(city.districts))
    out: list[Lamppost] = []
    for rank, district in enumerate(city.districts):
        count = share + (rank < extra)
        busyness = rng.uniform(0.7, 1.4)
        for number, (street, point) in enumerate(_place(district, count, rng), 1):
            out.append(Lamppost(city, district, street, number, point,
                                round(busyness * rng.uniform(0.85, 1.15), 3),
                                rng.choice((100.0, 150.0, 250.0))))
    return out


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def _time(when: datetime) -> dict[str, str]:
    return {"@type": "DateTime", "@value": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _geo(point: Point) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": list(point)}}


def readings_of(post: Lamppost, seed: int, when: datetime) -> Readings:
    moment = Moment.of(when, post.city.utc_offset)
    return readings(seed, post.key, post.busyness, moment, post.power_rating,
                    post.city.temperature_range)


def observed_attributes(post: Lamppost, value: Readings, when: datetime) -> dict[str, EntityBody]:
    """Entity type -> the attributes the simulator updates (keyed by entity type)."""
    at = _time(when)
    # every reading carries the instant it was measured (4.8: observedAt), so its
    # history is queried on the time of the measurement, the temporal API's default
    observed = at["@value"]

    def reading(value: Any, **extra: Any) -> dict[str, Any]:
        return _prop(value, observedAt=observed, **extra)

    return {
        "Streetlight": {
            "powerState": reading("on" if value.lamp_on else "off"),
            "powerConsumption": reading(value.power, unitCode="WTT"),
            "observationDateTime": _prop(at),
        },
        "AirQualityObserved": {
            "dateObserved": _prop(at),
            "no2": reading(value.no2, unitCode="GQ"),
            "pm25": reading(value.pm25, unitCode="GQ"),
            "pm10": reading(value.pm10, unitCode="GQ"),
            "o3": reading(value.o3, unitCode="GQ"),
            "airQualityIndex": reading(value.aqi),
            "airQualityLevel": reading("good" if value.aqi <= 50 else
                                       "moderate" if value.aqi <= 100 else "unhealthy"),
        },
        "WeatherObserved": {
            "dateObserved": _prop(at),
            "temperature": reading(value.temperature, unitCode="CEL"),
            "relativeHumidity": reading(value.humidity),
            "windSpeed": reading(value.wind_speed, unitCode="MTS"),
            "atmosphericPressure": reading(value.pressure, unitCode="A97"),
        },
        "TrafficFlowObserved": {
            "dateObserved": _prop(at),
            "intensity": reading(value.intensity),
            "occupancy": reading(value.occupancy),
            "averageVehicleSpeed": reading(value.speed, unitCode="KMH"),
            "congested": reading(value.congested),
        },
    }


def lamppost_entities(post: Lamppost, seed: int, when: datetime) -> list[EntityBody]:
    """The Streetlight and its three observed entities at ``when``."""
    updates = observed_attributes(post, readings_of(post, seed, when), when)
    where = {"location": _geo(post.point), "areaServed": _prop(post.district.name)}
    address = _prop({"streetAddress": post.street, "addressLocality": post.district.name,
                     "addressRegion": post.city.name, "addressCountry": post.city.country})
    rng = random.Random(f"{seed}:{post.key}:static")
    light: EntityBody = {
        "id": post.entity_id(), "type": "Streetlight", **where, "address": address,
        "status": _prop("defectiveLamp" if rng.random() < 0.025 else "ok"),
        "lanternHeight": _prop(rng.choice((8, 10, 12)), unitCode="MTR"),
        "powerRating": _prop(post.power_rating, unitCode="WTT"),
        "streetPoleNum": _prop(f"{post.district.code[:2].upper()}{post.number:04d}"),
        "locationCategory": _prop("sidewalk"),
        "controllingMethod": _prop("group"),
        "refDevice": {"type": "Relationship",
                      "object": [post.entity_id(kind) for kind in OBSERVED]},
        **updates["Streetlight"],
    }
    out = [light]
    for kind in OBSERVED:
        entity: EntityBody = {"id": post.entity_id(kind), "type": kind, **where, **updates[kind]}
        if kind == "TrafficFlowObserved":
            entity["laneDirection"] = _prop("forward")
            entity["refRoadSegment"] = _prop(post.street)
        else:
            entity["address"] = address
        out.append(entity)
    for entity in out:
        entity["@context"] = context_url(entity["type"])
    return out


def catalogue_entities(city: City, base_url: str, when: datetime) -> list[EntityBody]:
    """The DCAT-AP Catalogue, Datasets and Distributions that publish the city's data."""
    code, dcat = city.code, context_url("Catalogue")
    catalogue_id = f"urn:ngsi-ld:Catalogue:{code}:open-data"
    issued = _prop(_time(when.replace(hour=0, minute=0, second=0, microsecond=0)))
    datasets: list[EntityBody] = []
    distributions: list[EntityBody] = []
    for kind, title in (("Streetlight", "Smart lampposts"),
                        ("AirQualityObserved", "Air quality at the lampposts"),
                        ("WeatherObserved", "Weather at the lampposts"),
                        ("TrafficFlowObserved", "Traffic flow at the lampposts")):
        dataset_id = f"urn:ngsi-ld:Dataset:{code}:{kind}"
        type_iri = context_url(kind).replace("raw.githubusercontent.com/smart-data-models/",
                                             "smartdatamodels.org/").rsplit("/master/", 1)[0]
        query = (f"{base_url}/ngsi-ld/v1/entities?type={quote(type_iri + '/' + kind, safe='')}"
                 f"&idPattern={quote(f'^urn:ngsi-ld:{kind}:{code}:', safe='')}")
        ids = []
        for fmt, media in (("ngsi-ld", "application/ld+json"), ("geojson", "application/geo+json")):
            distribution_id = f"urn:ngsi-ld:Distribution:{code}:{kind}:{fmt}"
            ids.append(distribution_id)
            distributions.append({
                "id": distribution_id, "type": "Distribution",
                "title": _prop([f"{title} ({city.name}), {fmt}"]),
                "accessURL": _prop([query]),
                "mediaType": _prop(media), "format": _prop(media),
                "license": _prop("CC-BY-4.0"), "status": _prop("Completed"),
                "belongsToDataset": {"type": "Relationship", "object": dataset_id},
                "issued": issued, "@context": dcat,
            })
        datasets.append({
            "id": dataset_id, "type": "Dataset",
            "title": _prop([f"{title} ({city.name})"]),
            "description": _prop([f"{title} in {city.name}, updated every few seconds, "
                                  "as NGSI-LD entities (Smart Data Models)."]),
            "publisher": _prop(city.publisher),
            "keyword": _prop(["smart lampposts", city.name, kind]),
            "theme": _prop(["Environment" if kind != "Streetlight" else "Government"]),
            "accrualPeriodicity": _prop("continuous"),
            "belongsToCatalogue": {"type": "Relationship", "object": catalogue_id},
            "distribution": {"type": "Relationship", "object": ids},
            "issued": issued, "@context": dcat,
        })
    catalogue: EntityBody = {
        "id": catalogue_id, "type": "Catalogue",
        "title": _prop([f"{city.name} open data (demo)"]),
        "description": _prop([f"Open datasets of {city.name}'s smart lampposts."]),
        "publisher": _prop(city.publisher),
        "dataset": {"type": "Relationship", "object": [d["id"] for d in datasets]},
        "license": _prop("CC-BY-4.0"), "issued": issued, "@context": dcat,
    }
    return [catalogue, *datasets, *distributions]


def generate(city: City, size: int, seed: int, when: datetime,
             base_url: str = "http://localhost:1026") -> list[EntityBody]:
    """Every entity of the city's data set (see the module docstring)."""
    out = catalogue_entities(city, base_url, when)
    for post in lampposts(city, size, seed):
        out.extend(lamppost_entities(post, seed, when))
    return out
