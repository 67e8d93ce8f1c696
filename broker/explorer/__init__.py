"""The explorer: a page at /explorer served by the broker, on by default (``--explorer``).

Entity types with counts, a filterable entity list, an entity in each
representation, a map of every GeoProperty over a bundled base layer, a query
builder with the equivalent curl command, a tenant selector, and live updates
pushed from the broker's change events.  The page is built from ``frontend/``
(TypeScript and Leaflet, with npm at development time); the built files in
``static/`` ship in the package, so nothing is fetched from elsewhere.
"""

from broker.explorer.live import LiveFeeds, PageFeed
from broker.explorer.routes import describe, setup

__all__ = ["LiveFeeds", "PageFeed", "describe", "setup"]
