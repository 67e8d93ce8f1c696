// The history chart of an entity's numeric Property: its readings and their hourly
// averages over the last hour, day or week (uPlot), kept current by the live updates.
import uPlot from "uplot";
import { get } from "./api";
import { MAX_POINTS, type Point, type Series, hourlyAverages, readings } from "./history";

export const RANGES: Record<string, number> = { hour: 3600, day: 86400, week: 7 * 86400 };
const HEIGHT = 170;

type Attribute = { type?: string; value?: unknown; observedAt?: string };

const $ = <T extends HTMLElement>(root: HTMLElement, selector: string) =>
  root.querySelector(selector) as T;

export class HistoryChart {
  range = "hour";
  private plot: uPlot | null = null;
  private entityId = "";
  private series: Series | null = null;
  private raw: Point[] = [];
  /** false when the window holds more readings than the chart asked for */
  private complete = true;
  private avg: Point[] = [];
  private avgEnd: number | null = null;
  private generation = 0;
  private refreshing = false;
  private again = false;
  private readonly select: HTMLSelectElement;
  private readonly status: HTMLElement;
  private readonly area: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    this.select = $(root, "#history-attr");
    this.status = $(root, "#history-status");
    this.area = $(root, "#history-chart");
    this.select.addEventListener("change", () => {
      this.series = { attr: this.select.value,
                      timeproperty: this.select.selectedOptions[0]?.dataset.time ?? "modifiedAt" };
      void this.load();
    });
    for (const button of root.querySelectorAll<HTMLButtonElement>("#history-range button")) {
      button.addEventListener("click", () => {
        this.range = String(button.dataset.range);
        void this.load();
      });
    }
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.area);
  }

  /** The broker records no history (--temporal off): say so, ask nothing. */
  off(): void {
    this.root.dataset.state = "off";
    this.root.classList.add("off");
    this.status.textContent = "History is off: this broker runs with --temporal off.";
  }

  /** No entity selected (another tenant): an empty chart. */
  clear(): void {
    if (this.root.dataset.state === "off") return;
    this.generation++;
    this.entityId = "";
    this.series = null;
    this.select.replaceChildren();
    this.draw([], [], "Select an entity to chart a numeric Property's history.");
  }

  /** Chart ``id``: its numeric Properties in the selector, the first (or the same) drawn. */
  async show(id: string): Promise<void> {
    if (this.root.dataset.state === "off") return;
    const generation = ++this.generation;
    this.entityId = id;
    let entity: Record<string, Attribute>;
    try {
      entity = await get<Record<string, Attribute>>(`/entities/${encodeURIComponent(id)}`);
    } catch (error) {
      if (generation === this.generation) this.draw([], [], String(error));
      return;
    }
    if (generation !== this.generation) return;
    const numeric = Object.entries(entity).filter(
      ([, a]) => a?.type === "Property" && typeof a.value === "number");
    const previous = this.series?.attr;
    this.select.replaceChildren(...numeric.map(([name, a]) => {
      const option = new Option(name.includes("/") ? name.slice(name.lastIndexOf("/") + 1)
                                                   : name, name);
      // the time of the measurement where the attribute has one (4.8), else of the write
      option.dataset.time = a.observedAt ? "observedAt" : "modifiedAt";
      return option;
    }));
    if (numeric.length === 0) {
      this.series = null;
      this.draw([], [], "No numeric Property to chart.");
      return;
    }
    // the same attribute as before, else the first reading (observedAt), else the first
    const chosen = numeric.find(([name]) => name === previous)
      ?? numeric.find(([, a]) => a.observedAt) ?? numeric[0];
    this.select.value = chosen[0];
    this.series = { attr: chosen[0], timeproperty: chosen[1].observedAt ? "observedAt"
                                                                        : "modifiedAt" };
    await this.load();
  }

  /** Read the whole window again (another attribute, another range, a new entity). */
  async load(): Promise<void> {
    if (!this.series || !this.entityId) return;
    const generation = ++this.generation;
    const [id, series] = [this.entityId, this.series];
    this.markRange();
    this.status.textContent = "loading…";
    try {
      const from = this.windowStart();
      const [raw, averages] = await Promise.all([readings(id, series, from),
                                                 hourlyAverages(id, series, from)]);
      if (generation !== this.generation) return;
      this.raw = raw.points;
      this.complete = raw.complete;
      this.avg = averages.points;
      this.avgEnd = averages.lastEnd;
      this.plot?.destroy();
      this.plot = null;
      this.draw(this.raw, this.avg);
    } catch (error) {
      if (generation === this.generation) this.draw([], [], String(error));
    }
  }

  /** A live change of ``id``'s ``attributes``: add the new readings to the chart. */
  changed(id: string, attributes: string[]): void {
    if (id !== this.entityId || !this.series || !attributes.includes(this.series.attr)) return;
    if (this.refreshing) { this.again = true; return; }
    void this.refresh();
  }

  private async refresh(): Promise<void> {
    const generation = this.generation;
    const [id, series] = [this.entityId, this.series as Series];
    this.refreshing = true;
    try {
      do {
        this.again = false;
        const start = this.windowStart();
        const last = this.raw.length ? this.raw[this.raw.length - 1][0] : null;
        const from = last === null ? start : new Date(last * 1000);
        const [fresh, averages] = await Promise.all([readings(id, series, from),
                                                     hourlyAverages(id, series, start)]);
        if (generation !== this.generation) return;
        const edge = start.getTime() / 1000;
        this.raw = [...this.raw, ...fresh.points.filter(([t]) => last === null || t > last)]
          .filter(([t]) => t >= edge).slice(-MAX_POINTS);
        this.avg = averages.points;
        this.avgEnd = averages.lastEnd;
        this.draw(this.raw, this.avg);
      } while (this.again);
    } catch (error) {
      if (generation === this.generation) this.status.textContent = String(error);
    } finally {
      this.refreshing = false;
    }
  }

  private windowStart(): Date {
    return new Date(Date.now() - RANGES[this.range] * 1000);
  }

  private markRange(): void {
    for (const button of this.root.querySelectorAll<HTMLButtonElement>("#history-range button")) {
      button.classList.toggle("active", button.dataset.range === this.range);
    }
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(200, this.area.clientWidth), height: HEIGHT };
  }

  /** Draw (or redraw) the readings and the hourly averages on one time axis. */
  private draw(raw: Point[], avg: Point[], message?: string): void {
    this.root.dataset.points = String(raw.length);
    this.root.dataset.averages = String(avg.length);
    this.root.dataset.last = raw.length ? String(raw[raw.length - 1][1]) : "";
    if (message !== undefined || (raw.length === 0 && avg.length === 0)) {
      this.plot?.destroy();
      this.plot = null;
      this.status.textContent = message ?? `no readings in the last ${this.range}`;
      return;
    }
    // the average holds over its hour: a step from the hour's start to the next one,
    // the last one up to the end of its hour or now
    const steps = [...avg];
    if (avg.length && this.avgEnd !== null) {
      const end = Math.min(this.avgEnd, Math.max(Date.now() / 1000, raw.length ? raw[raw.length - 1][0] : 0));
      if (end > avg[avg.length - 1][0]) steps.push([end, avg[avg.length - 1][1]]);
    }
    const byTime = new Map<number, [number | null, number | null]>();
    for (const [t, v] of raw) byTime.set(t, [v, null]);
    for (const [t, v] of steps) byTime.set(t, [byTime.get(t)?.[0] ?? null, v]);
    const xs = [...byTime.keys()].sort((a, b) => a - b);
    const data: uPlot.AlignedData = [xs, xs.map((t) => byTime.get(t)?.[0] ?? null),
                                     xs.map((t) => byTime.get(t)?.[1] ?? null)];
    const series = this.series as Series;
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
    const shown = (this.complete && raw.length < MAX_POINTS ? "" : "the latest ")
      + plural(raw.length, "reading");
    this.status.textContent = `${shown}, ${plural(avg.length, "hourly average")} `
      + `(by ${series.timeproperty})`;
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const name = this.select.selectedOptions[0]?.textContent ?? series.attr;
    this.plot = new uPlot({
      ...this.size(),
      // the chosen window, whatever part of it has readings
      scales: { x: { time: true, range: (_u, _min, max) =>
        [this.windowStart().getTime() / 1000, Math.max(Date.now() / 1000, max ?? 0)] } },
      legend: { live: false },
      series: [
        {},
        { label: name, stroke: "#2f7ed8", width: 1.5, spanGaps: true },
        { label: "hourly average", stroke: "#d94f3d", width: 2, spanGaps: true,
          paths: uPlot.paths.stepped?.({ align: 1 }), points: { show: false } },
      ],
    }, data, this.area);
  }
}
