// An attribute's history from the NGSI-LD temporal API (clauses 5.7.3, 5.7.4, 6.3.10):
// its readings (temporalValues) and hourly averages (aggregatedValues).
//
// The page asks GET /temporal/entities?id=ID&attrs=X rather than /temporal/entities/ID:
// the same instances, but a window with none answers 200 [] instead of 404 (a failed
// request would be an error in the browser's console).
import { API, ApiError, headers } from "./api";

/** [seconds since the epoch, value] */
export type Point = [number, number];

export interface Series {
  attr: string;
  /** "observedAt" when the attribute carries it, otherwise "modifiedAt" */
  timeproperty: string;
}

/** the most readings one chart holds (the most recent ones) */
export const MAX_POINTS = 2000;
/** the most requests one read makes when the broker answers in pages (206) */
const MAX_PAGES = 40;

type Temporal = Record<string, unknown>;

async function temporal(params: Record<string, string>):
    Promise<{ entities: Temporal[]; range: string | null }> {
  const response = await fetch(`${API}/temporal/entities?${new URLSearchParams(params)}`,
                               { headers: headers() });
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body);
  return { entities: body as Temporal[], range: response.headers.get("Content-Range") };
}

/** The attribute of the answer: one instance list, the default dataset's if several. */
function attribute(entities: Temporal[], attr: string): Record<string, unknown> | undefined {
  const value = entities[0]?.[attr];
  if (Array.isArray(value)) {
    return (value.find((v) => !(v as Record<string, unknown>).datasetId) ?? value[0]) as
      Record<string, unknown> | undefined;
  }
  return value as Record<string, unknown> | undefined;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The oldest instant of a backwards page: "date-time <start>-<end>/<size>" (6.3.10). */
export function rangeEnd(header: string): string | null {
  const match = /^date-time\s+(\d{4}-\S+?Z)-(\d{4}-\S+?Z)\/\S+$/.exec(header.trim());
  return match ? match[2] : null;
}

/** The readings of ``series`` from ``from`` on, oldest first: the latest MAX_POINTS (or
 * what MAX_PAGES pages hold); ``complete`` when they are all there are. */
export async function readings(id: string, series: Series, from: Date):
    Promise<{ points: Point[]; complete: boolean }> {
  const base = { id, attrs: series.attr, options: "temporalValues",
                 timeproperty: series.timeproperty };
  let window: Record<string, string> = { timerel: "after", timeAt: from.toISOString() };
  const pages: Point[][] = [];
  let count = 0;
  let complete = false;
  for (let page = 0; page < MAX_PAGES && count < MAX_POINTS; page++) {
    // lastN: the most recent first; a broker that cannot answer at once pages backwards
    const { entities, range } = await temporal({ ...base, ...window,
                                                 lastN: String(MAX_POINTS - count) });
    const values = (attribute(entities, series.attr)?.values ?? []) as [unknown, string][];
    const points = values.filter(([v]) => typeof v === "number")
      .map(([v, at]) => [seconds(at), v as number] as Point);
    pages.unshift(points);
    count += values.length;
    const oldest = range === null ? null : rangeEnd(range);
    if (oldest === null || values.length === 0) {
      complete = count < MAX_POINTS;
      break;
    }
    // the next page: what is older than this one (between is timeAt <= t < endTimeAt)
    window = { timerel: "between", timeAt: from.toISOString(), endTimeAt: oldest };
  }
  return { points: pages.flat().sort((a, b) => a[0] - b[0]), complete };
}

/** The hourly averages of ``series`` from the hour that holds ``from``: [start, avg]. */
export async function hourlyAverages(id: string, series: Series, from: Date):
    Promise<{ points: Point[]; lastEnd: number | null }> {
  const hour = new Date(from);
  hour.setUTCMinutes(0, 0, 0);  // buckets start at timeAt: whole hours
  const { entities } = await temporal({
    id, attrs: series.attr, format: "aggregatedValues", aggrMethods: "avg",
    aggrPeriodDuration: "PT1H", timeproperty: series.timeproperty, timerel: "after",
    timeAt: hour.toISOString(),
  });
  const buckets = (attribute(entities, series.attr)?.avg ?? []) as [unknown, string, string][];
  const points = buckets.filter(([v]) => typeof v === "number")
    .map(([v, start]) => [seconds(start), v as number] as Point)
    .sort((a, b) => a[0] - b[0]);
  const last = buckets.length ? seconds(buckets[buckets.length - 1][2]) : null;
  return { points, lastEnd: last };
}
