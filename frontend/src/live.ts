// Live updates: the broker's server-sent events for the current tenant and @context.
import { settings } from "./api";

export interface Change {
  id: string;
  type: string[];
  trigger: "entityCreated" | "entityUpdated" | "entityDeleted";
  attributes: string[];
  entity: Record<string, unknown> | null;
}

export class LiveStream {
  private source: EventSource | null = null;
  onChanges: (changes: Change[]) => void = () => {};
  onReset: () => void = () => {};
  onState: (connected: boolean) => void = () => {};

  connect(): void {
    this.close();
    const params = new URLSearchParams();
    if (settings.tenant) params.set("tenant", settings.tenant);
    if (settings.context) params.set("context", settings.context);
    const source = new EventSource(`/explorer/events?${params}`);
    source.addEventListener("open", () => this.onState(true));
    source.addEventListener("error", () => this.onState(false));
    source.addEventListener("changes", (event) => {
      this.onChanges(JSON.parse((event as MessageEvent<string>).data).changes as Change[]);
    });
    source.addEventListener("reset", () => this.onReset());
    this.source = source;
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }
}
