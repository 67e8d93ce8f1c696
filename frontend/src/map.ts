// The map: the bundled land outlines as base layer (no tile server) and a marker per
// entity location, updated from the live stream.
import * as L from "leaflet";

export type Feature = {
  id: string;
  geometry: { type: string; coordinates: unknown } | null;
  properties: { type: string | string[] };
};

const PALETTE = ["#d94f3d", "#2f7ed8", "#f0a30a", "#1a9850", "#7b3294", "#e7298a", "#666666",
                 "#00a0b0"];

export class EntityMap {
  readonly map: L.Map;
  private readonly layers = new Map<string, L.Layer>();
  private readonly colours = new Map<string, string>();
  private readonly group: L.FeatureGroup;
  onSelect: (id: string) => void = () => {};

  constructor(element: HTMLElement) {
    this.map = L.map(element, { preferCanvas: true, zoomControl: true, attributionControl: true });
    this.map.attributionControl.setPrefix("");
    this.map.attributionControl.addAttribution("Land: OpenStreetMap contributors (ODbL), geo-maps");
    this.group = L.featureGroup().addTo(this.map);
    this.map.setView([22.3, 114.17], 12);
  }

  async loadBase(url: string): Promise<void> {
    const response = await fetch(url);
    if (!response.ok) return;
    L.geoJSON(await response.json(), {
      style: { color: "#9bb0a0", weight: 1, fillColor: "#e9efe6", fillOpacity: 1 },
      interactive: false,
    }).addTo(this.map);
    this.group.bringToFront();
  }

  colour(type: string): string {
    let colour = this.colours.get(type);
    if (!colour) {
      colour = PALETTE[this.colours.size % PALETTE.length];
      this.colours.set(type, colour);
    }
    return colour;
  }

  clear(): void {
    this.group.clearLayers();
    this.layers.clear();
  }

  get size(): number { return this.layers.size; }

  /** Add or move the marker of one GeoProperty of an entity (a null geometry removes it):
   * ``key`` the entity id for its location, "id geoProperty" for the others. */
  put(key: string, type: string, geometry: Feature["geometry"], id = key): void {
    const old = this.layers.get(key);
    if (old && geometry?.type === "Point") {
      // moved in place: the marker keeps its place in the drawing order
      const [lon, lat] = geometry.coordinates as [number, number];
      let moved = false;
      (old as L.GeoJSON).eachLayer((marker) => {
        if (marker instanceof L.CircleMarker) { marker.setLatLng([lat, lon]); moved = true; }
      });
      if (moved) return;
    }
    if (old) this.group.removeLayer(old);
    this.layers.delete(key);
    if (!geometry) return;
    const colour = this.colour(type);
    const layer = L.geoJSON({ type: "Feature", geometry, properties: {} } as GeoJSON.Feature, {
      pointToLayer: (_f, at) => L.circleMarker(at, {
        radius: 5, color: "#ffffff", weight: 1, fillColor: colour, fillOpacity: 0.9,
      }),
      style: { color: colour, weight: 2 },
    });
    const name = key === id ? "" : `<br>${key.slice(id.length + 1)}`;
    layer.bindTooltip(`${type}<br>${id}${name}`);
    layer.on("click", () => this.onSelect(id));
    layer.addTo(this.group);
    this.layers.set(key, layer);
  }

  /** Briefly mark the entity that just changed. */
  flash(id: string): void {
    const layer = this.layers.get(id) as L.GeoJSON | undefined;
    layer?.eachLayer((marker) => {
      if (marker instanceof L.CircleMarker) {
        marker.setStyle({ radius: 8 } as L.CircleMarkerOptions);
        setTimeout(() => marker.setStyle({ radius: 5 } as L.CircleMarkerOptions), 600);
      }
    });
  }

  fit(): void {
    this.map.invalidateSize();
    const bounds = this.group.getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 16 });
  }
}
