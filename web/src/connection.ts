// Connection states and reconnect back-off, shared by every page (none of this needs livekit-client).
export type ConnState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected";

export const STATE_TEXT: Record<ConnState, string> = {
  idle: "Not joined",
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

/** Delay before rejoin attempt `attempt` (0-based): 1 s, 2 s, 4 s … capped, with jitter in [50%, 100%]. */
export function backoffDelay(attempt: number, random: () => number = Math.random, baseMs = 1000, maxMs = 30000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 20)));
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}
