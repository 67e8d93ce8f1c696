"""The Hong Kong data sets: Streetlight- and AirQualityObserved-like entities spread
over the territory, loaded through batch upsert, and the query shapes run against them."""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

# Hong Kong bounding box (WGS84).
LON = (113.83, 114.41)
LAT = (22.15, 22.56)
DATASET_PREFIX = "urn:ngsi-ld:Streetlight:hk:"
AIR_PREFIX = "urn:ngsi-ld:AirQualityObserved:hk:"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


def point(rng: random.Random) -> list[float]:
    """A random [lon, lat] inside Hong Kong's bounding box."""
    return [round(rng.uniform(*LON), 6), round(rng.uniform(*LAT), 6)]


def dataset_entity(i: int) -> dict[str, Any]:
    """Entity number ``i`` of the data set (deterministic): 3 in 4 are Streetlights."""
    rng = random.Random(i)
    location = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": point(rng)}}
    observed = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.000Z"
    if i % 4 == 3:
        return {
            "id": f"{AIR_PREFIX}{i}",
            "type": "AirQualityObserved",
            "location": location,
            "NO2": {"type": "Property", "value": round(rng.uniform(5, 120), 1),
                    "unitCode": "GQ", "observedAt": observed},
            "PM10": {"type": "Property", "value": round(rng.uniform(5, 90), 1),
                     "unitCode": "GQ", "observedAt": observed},
            "temperature": {"type": "Property", "value": round(rng.uniform(12, 34), 1),
                            "unitCode": "CEL", "observedAt": observed},
            "airQualityLevel": {"type": "Property",
                                "value": rng.choice(["good", "moderate", "unhealthy"])},
        }
    return {
        "id": f"{DATASET_PREFIX}{i}",
        "type": "Streetlight",
        "location": location,
        "powerState": {"type": "Property", "value": rng.choice(["on", "off"])},
        "lanternHeight": {"type": "Property", "value": rng.randint(6, 14), "unitCode": "MTR"},
        "powerConsumption": {"type": "Property", "value": round(rng.uniform(50, 250), 1),
                             "unitCode": "WTT", "observedAt": observed},
        "status": {"type": "Property", "value": rng.choice(["ok", "ok", "ok", "defectiveLamp"])},
        "circuit": {"type": "Property", "value": f"C-{i % 97}"},
        "refStreetlightGroup": {"type": "Relationship",
                                "object": f"urn:ngsi-ld:StreetlightGroup:hk:{i % 50}"},
    }


# 4.9 NGSI-LD Query Language: the type + q query of the targets.
def query_paths(variants: int = 512) -> tuple[str, ...]:
    """type + q, limit 20: lamps that are on and at least some height (rotating).

    512 distinct requests (8 heights x 64 offsets) used in rotation: more than the
    broker's cache of whole answers holds (256), so the figure measures queries
    answered by the store, not repeated answers served from memory.
    """
    return tuple(
        f"/ngsi-ld/v1/entities?type=Streetlight&limit=20&offset={k // 8 % 64}&q="
        + quote(f'powerState=="on";lanternHeight>={6 + k % 8}', safe="")
        for k in range(variants)
    )


# 4.10 NGSI-LD Geo-query Language.
def near_paths(variants: int = 32, distance_m: int = 1000) -> tuple[str, ...]:
    """georel near;maxDistance 1 km around random points of Hong Kong, limit 20."""
    rng = random.Random(7)
    out = []
    for _ in range(variants):
        lon, lat = point(rng)
        out.append(
            "/ngsi-ld/v1/entities?type=Streetlight&limit=20&georel="
            + quote(f"near;maxDistance=={distance_m}", safe="")
            + "&geometry=Point&coordinates=" + quote(f"[{lon},{lat}]", safe="")
        )
    return tuple(out)


def within_paths(variants: int = 32, half_side_deg: float = 0.01) -> tuple[str, ...]:
    """georel within a ~2 km square around random points of Hong Kong, limit 20."""
    rng = random.Random(11)
    out = []
    for _ in range(variants):
        lon, lat = point(rng)
        w, e = round(lon - half_side_deg, 6), round(lon + half_side_deg, 6)
        s, n = round(lat - half_side_deg, 6), round(lat + half_side_deg, 6)
        ring = f"[[[{w},{s}],[{e},{s}],[{e},{n}],[{w},{n}],[{w},{s}]]]"
        out.append(
            "/ngsi-ld/v1/entities?type=Streetlight&limit=20&georel=within"
            "&geometry=Polygon&coordinates=" + quote(ring, safe="")
        )
    return tuple(out)


class DatasetLoader:
    """Grows the broker's data set through batch upsert; sizes are cumulative."""

    def __init__(self, base_url: str, batch: int = 1000) -> None:
        self.base_url = base_url
        self.batch = batch
        self.loaded = 0
        self.load_seconds = 0.0

    async def ensure(self, size: int) -> None:
        """Make sure entities 0..size-1 are in the broker."""
        if size <= self.loaded:
            return
        started = time.perf_counter()
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            for first in range(self.loaded, size, self.batch):
                body = [dataset_entity(i) for i in range(first, min(size, first + self.batch))]
                async with session.post(self.base_url + UPSERT, data=orjson.dumps(body),
                                        headers=headers) as resp:
                    text = await resp.text()
                    if resp.status >= 300:
                        raise RuntimeError(
                            f"loading the data set failed: HTTP {resp.status} {text[:500]}"
                        )
        self.load_seconds += time.perf_counter() - started
        self.loaded = size
