// The explorer page: types, a filterable entity list, an entity's detail in every
// representation, a map, a query builder with its curl command, live updates.
import { type Feature, EntityMap } from "./map";
import { ApiError, type Query, curl, features, get, hostedContexts, queryParams, settings,
         tenants, typeCounts } from "./api";
import { HistoryChart } from "./chart";
import { type Change, LiveStream } from "./live";

const FORMATS: Record<string, { params: Record<string, string>; accept: string }> = {
  normalized: { params: {}, accept: "application/json" },
  concise: { params: { format: "concise" }, accept: "application/json" },
  keyValues: { params: { format: "keyValues" }, accept: "application/json" },
  GeoJSON: { params: {}, accept: "application/geo+json" },
};
const MAP_LIMIT = 10000;
const PAGE = 1000;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  types: new Map<string, { count: number; geo: string[] }>(),
  selected: "" as string,
  format: "normalized",
  query: { type: "", q: "", attrs: "", idPattern: "", limit: 50 } as Query,
  rows: new Map<string, HTMLTableRowElement>(),
};

const map = new EntityMap($("map"));
const live = new LiveStream();
const historyChart = new HistoryChart($("history"));

function short(name: string): string {
  return name.includes("/") ? name.slice(name.lastIndexOf("/") + 1) : name;
}

function problemText(error: unknown): string {
  if (error instanceof ApiError) {
    const problem = error.problem as { title?: string; detail?: string };
    return `${error.status} ${problem.title ?? ""}: ${problem.detail ?? ""}`;
  }
  return String(error);
}

async function showTypes(): Promise<void> {
  state.types = await typeCounts();
  const list = $("types");
  list.replaceChildren();
  for (const [name, { count }] of state.types) {
    const item = document.createElement("li");
    item.dataset.type = name;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = map.colour(name);
    const label = document.createElement("button");
    label.type = "button";
    label.textContent = short(name);
    label.title = name;
    label.addEventListener("click", () => { setQuery({ type: name }); void runQuery(); });
    const badge = document.createElement("span");
    badge.className = "count";
    badge.textContent = String(count);
    item.append(swatch, label, badge);
    list.append(item);
  }
}

// changes that arrive while the map loads wait for it: drawn at once, a lamppost that
// changed would be drawn before the sensors that share its place, and hidden by them
type Placed = [type: string, geometry: Feature["geometry"], id: string];
let mapLoading: Map<string, Placed> | null = null;

/** The GeoProperties of a type (its location when the broker does not say). */
function geoProperties(type: string): string[] {
  return state.types.get(type)?.geo ?? ["location"];
}

/** One marker per GeoProperty of an entity: its location under its id, others beside it. */
function geoKey(id: string, property: string): string {
  return property === "location" ? id : `${id} ${property}`;
}

function place(key: string, placed: Placed): void {
  if (mapLoading) mapLoading.set(key, placed);
  else map.put(key, placed[0], placed[1], placed[2]);
}

async function showMap(): Promise<void> {
  map.clear();
  const waiting = new Map<string, Placed>();
  mapLoading = waiting;
  // one type at a time, lampposts last: drawn on top of the sensors that share their place
  const types = [...state.types.keys()].sort((a, b) =>
    Number(short(a) === "Streetlight") - Number(short(b) === "Streetlight"));
  for (const type of types) {
    for (const property of geoProperties(type)) {
      // every GeoProperty as the geometry of the GeoJSON representation (6.3.15)
      const params: Record<string, string> =
        property === "location" ? {} : { geometryProperty: property };
      for (let offset = 0; offset < MAP_LIMIT && map.size < MAP_LIMIT; offset += PAGE) {
        const page = await get<{ features: Feature[] }>(
          "/entities", { type, ...params, limit: String(PAGE), offset: String(offset) },
          "application/geo+json");
        for (const feature of page.features) {
          if (!waiting.has(geoKey(feature.id, property))) {
            map.put(geoKey(feature.id, property), type, feature.geometry, feature.id);
          }
        }
        if (page.features.length < PAGE) break;
      }
    }
  }
  if (mapLoading === waiting) {
    mapLoading = null;
    for (const [key, [type, geometry, id]] of waiting) map.put(key, type, geometry, id);
  }
  $("map").dataset.markers = String(map.size);
  map.fit();
}

function setQuery(changes: Partial<Query>): void {
  Object.assign(state.query, changes);
  for (const key of ["type", "q", "attrs", "idPattern"] as const) {
    $<HTMLInputElement>(`query-${key}`).value = state.query[key];
  }
  $<HTMLInputElement>("query-limit").value = String(state.query.limit);
  $("curl").textContent = curl(state.query, location.origin);
}

function readQuery(): void {
  for (const key of ["type", "q", "attrs", "idPattern"] as const) {
    state.query[key] = $<HTMLInputElement>(`query-${key}`).value.trim();
  }
  state.query.limit = Number($<HTMLInputElement>("query-limit").value) || 50;
  $("curl").textContent = curl(state.query, location.origin);
}

function summary(entity: Record<string, unknown>, first: string[] = []): string {
  // the attributes that just changed come first
  const rank = (name: string) => (first.includes(name) ? 0 : 1);
  const values = Object.entries(entity)
    .filter(([k, v]) => !["id", "type", "areaServed"].includes(k) && typeof v !== "object")
    .sort(([a], [b]) => rank(a) - rank(b))
    .slice(0, 4)
    .map(([k, v]) => `${short(k)}: ${v}`);
  return values.join(", ");
}

function row(entity: Record<string, unknown>, changed: string[] = []): HTMLTableRowElement {
  const tr = document.createElement("tr");
  tr.dataset.id = String(entity.id);
  const cells = [String(entity.id), short(String(entity.type)), summary(entity, changed)];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  tr.addEventListener("click", () => void select(String(entity.id)));
  return tr;
}

async function runQuery(): Promise<void> {
  readQuery();
  const status = $("query-status");
  const body = $("entities").querySelector("tbody") as HTMLElement;
  if (!state.query.type && !state.query.q && !state.query.attrs && !state.query.idPattern) {
    state.query.type = [...state.types.keys()].join(",");
  }
  try {
    const entities = await get<Record<string, unknown>[]>(
      "/entities", { ...queryParams(state.query), format: "keyValues" });
    state.rows.clear();
    body.replaceChildren(...entities.map((e) => {
      const tr = row(e);
      state.rows.set(String(e.id), tr);
      return tr;
    }));
    status.textContent = `${entities.length} entities`;
    status.className = "";
  } catch (error) {
    status.textContent = problemText(error);
    status.className = "error";
  }
}

async function select(id: string): Promise<void> {
  if (id !== state.selected) void historyChart.show(id);
  state.selected = id;
  $("detail-title").textContent = id;
  for (const button of $("formats").querySelectorAll("button")) {
    button.classList.toggle("active", button.dataset.format === state.format);
  }
  const format = FORMATS[state.format];
  try {
    const entity = await get<unknown>(`/entities/${encodeURIComponent(id)}`, format.params,
                                      format.accept);
    $("detail-body").textContent = JSON.stringify(entity, null, 2);
  } catch (error) {
    $("detail-body").textContent = problemText(error);
  }
}

function applyChanges(changes: Change[]): void {
  let countsChanged = false;
  for (const change of changes) {
    const kind = change.type[0] ?? "";
    if (change.trigger !== "entityUpdated") countsChanged = true;
    const entity = change.entity;
    for (const property of geoProperties(kind)) {
      const geometry = (entity?.[property] ?? null) as Feature["geometry"];
      place(geoKey(change.id, property), [kind, geometry, change.id]);
    }
    if (changes.length <= 50) map.flash(change.id);  // a whole round at once: no flashing
    const existing = state.rows.get(change.id);
    if (existing && entity) {
      const fresh = row(entity, change.attributes);
      fresh.classList.add("changed");
      existing.replaceWith(fresh);
      state.rows.set(change.id, fresh);
    }
    if (change.id === state.selected) {
      if (entity === null) unselect();
      else {
        void select(change.id);
        historyChart.changed(change.id, change.attributes);
      }
    }
  }
  $("map").dataset.markers = String(map.size);
  const total = Number($("live").dataset.changes ?? "0") + changes.length;
  $("live").dataset.changes = String(total);
  $("live-count").textContent = `${total} changes`;
  if (countsChanged) void showTypes();
}

function unselect(): void {
  state.selected = "";
  $("detail-title").textContent = "Select an entity in the list or on the map";
  $("detail-body").textContent = "";
  historyChart.clear();
}

async function reload(): Promise<void> {
  live.connect();
  await showTypes();
  setQuery({ type: "" });
  await Promise.all([runQuery(), showMap()]);
}

async function start(): Promise<void> {
  const contexts = await hostedContexts();
  const contextSelect = $<HTMLSelectElement>("context");
  contextSelect.replaceChildren(new Option("core context only", ""),
                                ...contexts.map((url) => new Option(short(url), url)));
  settings.context = contexts.find((url) => url.endsWith("/smart-data-models")) ?? contexts[0] ?? "";
  contextSelect.value = settings.context;
  const tenantSelect = $<HTMLSelectElement>("tenant");
  const listTenants = async () => {
    const names = await tenants();
    if (!names.includes(settings.tenant)) names.push(settings.tenant);
    const shown = [...tenantSelect.options].map((o) => o.value);
    if (JSON.stringify(shown) === JSON.stringify(names)) return;  // an open list stays open
    tenantSelect.replaceChildren(...names.map((t) => new Option(t || "(default)", t)));
    tenantSelect.value = settings.tenant;
  };
  await listTenants();
  // tenants come into being with their first entity: list them again when the
  // selector is opened
  tenantSelect.addEventListener("focus", () => void listTenants());

  contextSelect.addEventListener("change", () => {
    settings.context = contextSelect.value;
    const selected = state.selected;
    unselect();  // attribute names change with the @context
    if (selected) void select(selected);
    void reload();
  });
  tenantSelect.addEventListener("change", () => { settings.tenant = tenantSelect.value;
                                                  unselect();  // another tenant's entities
                                                  void reload(); });
  $("query").addEventListener("submit", (event) => { event.preventDefault(); void runQuery(); });
  $("query").addEventListener("input", () => readQuery());
  for (const button of $("formats").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      state.format = String(button.dataset.format);
      if (state.selected) void select(state.selected);
    });
  }
  map.onSelect = (id) => void select(id);
  live.onChanges = applyChanges;
  live.onReset = () => void reload();
  live.onState = (connected) => {
    $("live").className = connected ? "on" : "off";
    $("live-state").textContent = connected ? "live" : "reconnecting";
  };
  if (!(await features()).temporal) historyChart.off();
  await map.loadBase("/explorer/assets/basemap.json");
  await reload();
  document.body.dataset.ready = "true";
}

void start();
