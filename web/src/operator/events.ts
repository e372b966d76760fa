// The console's live feed: one EventSource on /api/operator/events (`?show=` for a show other than
// the default; the page opens a new feed when the operator picks another show). EventSource reconnects by
// itself after a dropped stream; when the edge refuses it (401 after the session expired, 503)
// it gives up, and `onClosed` lets the page check the session and either show the sign-in form
// or open it again after a back-off.
import { backoffDelay } from "../connection";
import { EVENT_NAMES, type EventName } from "./model";
import { OPERATOR_BASE } from "./api";
import { forShow } from "./shows";

export type FeedState = "connecting" | "connected" | "reconnecting" | "disconnected";

export interface FeedHandlers {
  onEvent(name: EventName, data: unknown): void;
  onState(state: FeedState): void;
  /** The edge closed the stream for good; resolve true to open it again (after a back-off). */
  onClosed(): Promise<boolean>;
}

/** The event stream of a show (undefined: the default show). */
export const eventsUrl = (show: string | undefined): string => forShow(`${OPERATOR_BASE}/events`, show);

/** The JSON of an SSE `data:` field, or undefined when it is not JSON. */
export function parseEventData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class OperatorFeed {
  private source: EventSource | null = null;
  private attempt = 0;
  private stopped = false;
  private timer = 0;

  constructor(
    private readonly handlers: FeedHandlers,
    private readonly url = `${OPERATOR_BASE}/events`,
  ) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.handlers.onState("disconnected");
  }

  private open(): void {
    this.source?.close();
    this.handlers.onState(this.attempt ? "reconnecting" : "connecting");
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.attempt = 0;
      this.handlers.onState("connected");
    };
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => {
        const data = parseEventData((event as MessageEvent<string>).data);
        if (data !== undefined) this.handlers.onEvent(name, data);
      });
    }
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState !== EventSource.CLOSED) {
        this.handlers.onState("reconnecting"); // the browser retries by itself
        return;
      }
      void this.closed();
    };
  }

  private async closed(): Promise<void> {
    this.source = null;
    this.handlers.onState("disconnected");
    if (this.stopped || !(await this.handlers.onClosed()) || this.stopped) return;
    this.timer = window.setTimeout(() => this.open(), backoffDelay(this.attempt++));
  }
}
