// The NGSI-LD API as the page uses it: same origin, tenant and @context from the selectors.

export const API = "/ngsi-ld/v1";
export const CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"';

export interface Settings {
  tenant: string;
  context: string; // "" = the core context only
}

export interface Query {
  type: string;
  q: string;
  attrs: string;
  idPattern: string;
  limit: number;
}

export const settings: Settings = { tenant: "", context: "" };

export function headers(accept = "application/json"): Record<string, string> {
  const out: Record<string, string> = { Accept: accept };
  if (settings.context) out.Link = `<${settings.context}>; ${CONTEXT_REL}`;
  if (settings.tenant) out["NGSILD-Tenant"] = settings.tenant;
  return out;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: unknown) {
    super(`HTTP ${status}`);
  }
}

export async function get<T>(path: string, params: Record<string, string> = {},
                             accept = "application/json"): Promise<T> {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ""));
  const url = API + path + (query.toString() ? `?${query}` : "");
  const response = await fetch(url, { headers: headers(accept) });
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body);
  return body as T;
}

export function queryParams(query: Query, offset = 0): Record<string, string> {
  return {
    type: query.type, q: query.q, attrs: query.attrs, idPattern: query.idPattern,
    limit: String(query.limit), offset: offset ? String(offset) : "",
  };
}

/** The curl command that runs ``query`` against this broker. */
export function curl(query: Query, origin: string): string {
  const lines = [`curl -G '${origin}${API}/entities'`];
  for (const [name, value] of Object.entries(queryParams(query))) {
    if (value !== "") lines.push(`  --data-urlencode '${name}=${value.replace(/'/g, "'\\''")}'`);
  }
  if (settings.context) lines.push(`  -H 'Link: <${settings.context}>; ${CONTEXT_REL}'`);
  if (settings.tenant) lines.push(`  -H 'NGSILD-Tenant: ${settings.tenant}'`);
  return lines.join(" \\\n");
}

export interface EntityType { id: string; typeName: string; }

interface TypeInfo {
  entityCount: number;
  attributeDetails?: { attributeName: string; attributeTypes?: string[] }[];
}

/** Each entity type: its entity count and the names of its GeoProperties (5.7.6). */
export async function typeCounts(): Promise<Map<string, { count: number; geo: string[] }>> {
  const types = await get<EntityType[]>("/types", { details: "true" });
  const counts = new Map<string, { count: number; geo: string[] }>();
  await Promise.all(types.map(async (t) => {
    const info = await get<TypeInfo>(`/types/${encodeURIComponent(t.typeName)}`);
    const geo = (info.attributeDetails ?? [])
      .filter((a) => a.attributeTypes?.includes("GeoProperty")).map((a) => a.attributeName);
    counts.set(t.typeName, { count: info.entityCount, geo });
  }));
  return new Map([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export async function hostedContexts(): Promise<string[]> {
  const response = await fetch(`${API}/jsonldContexts?kind=Hosted`);
  return response.ok ? (await response.json() as string[]) : [];
}

export async function tenants(): Promise<string[]> {
  const response = await fetch("/explorer/tenants");
  return response.ok ? ((await response.json()) as { tenants: string[] }).tenants : [""];
}

export interface Features { temporal: boolean; }

/** What this broker serves (the temporal API may be off: --temporal off). */
export async function features(): Promise<Features> {
  const response = await fetch("/explorer/features");
  return response.ok ? (await response.json() as Features) : { temporal: false };
}
