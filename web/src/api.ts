// Typed fetch wrappers for the edge's HTTP API (same origin).
import {
  parseChatAccepted,
  parseChatHistory,
  parseConfig,
  parseTokenResponse,
  isObject,
  type AppConfig,
  type HistoryPage,
  type TokenResponse,
} from "./types";
import { parseMemoryAnswer, type MemoryAnswer } from "./memory";

/** An HTTP error from the edge, with FastAPI field errors and Retry-After pulled out. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** field name (last element of `loc`) -> message */
    readonly fieldErrors: Record<string, string> = {},
    /** seconds, from the Retry-After header */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Retry-After is either delta-seconds or an HTTP date. Returns whole seconds >= 1. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.max(1, Math.ceil(Number(trimmed)));
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/** FastAPI error bodies: `{"detail": "text"}` or `{"detail": [{"loc": [...], "msg": "..."}]}`. */
export function parseErrorDetail(body: unknown): { message: string; fieldErrors: Record<string, string> } {
  const fieldErrors: Record<string, string> = {};
  const messages: string[] = [];
  const detail = isObject(body) ? body.detail : undefined;
  if (typeof detail === "string") messages.push(detail);
  else if (Array.isArray(detail)) {
    for (const item of detail) {
      if (!isObject(item)) continue;
      const msg = typeof item.msg === "string" ? item.msg : "invalid value";
      const loc = Array.isArray(item.loc) ? item.loc : [];
      const field = loc.length ? String(loc[loc.length - 1]) : "";
      if (field && field !== "body" && !(field in fieldErrors)) fieldErrors[field] = msg;
      else messages.push(msg);
    }
  }
  const message = messages[0] ?? Object.values(fieldErrors)[0] ?? "";
  return { message, fieldErrors };
}

export async function request(path: string, init: RequestInit = {}, token?: string): Promise<unknown> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (init.body !== undefined) headers.set("Content-Type", "application/json");
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "cannot reach the server");
  }
  const text = await res.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const { message, fieldErrors } = parseErrorDetail(body);
    throw new ApiError(
      res.status,
      message || `request failed (HTTP ${res.status})`,
      fieldErrors,
      parseRetryAfter(res.headers.get("Retry-After")),
    );
  }
  return body;
}

/** The show's page config; `show` undefined: the deployment's default show. */
export async function getConfig(show?: string): Promise<AppConfig> {
  const query = show === undefined ? "" : `?${new URLSearchParams({ show })}`;
  return parseConfig(await request(`/api/config${query}`));
}

/** Who the visitor is comes from the edge's HttpOnly cookie (sent automatically), not from here. */
export interface TokenRequest {
  displayName: string;
  avatar: string;
  /** "stage" for the OBS page: a subscribe-only token that chat refuses. "preview" for the
   * console's preview: the same, and no audience (it keeps no host running). Default "viewer". */
  role?: "viewer" | "stage" | "preview";
  /** The show (its room name); left out: the deployment's default show. */
  show?: string;
}

export async function mintToken(req: TokenRequest): Promise<TokenResponse> {
  const body = await request("/api/livekit-token", { method: "POST", body: JSON.stringify(req) });
  return parseTokenResponse(body);
}

/**
 * A fresh clientId for one chat message: the edge stores a message once per (visitor, clientId),
 * so resending with the same one never shows it twice. 32 hex digits, within the edge's
 * [A-Za-z0-9_-]{8,64}; getRandomValues works on plain http too (randomUUID needs https).
 */
export function newClientId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Returns the id the edge assigned to the message (202); the same for a resend with the same clientId. */
export async function postChat(token: string, body: string, clientId?: string): Promise<string> {
  const payload = clientId === undefined ? { body } : { body, clientId };
  const res = await request("/api/chat", { method: "POST", body: JSON.stringify(payload) }, token);
  const id = parseChatAccepted(res);
  if (id === null) throw new ApiError(0, "malformed chat response");
  return id;
}

/**
 * Recent chat, oldest first; with `after` (a message id) the messages stored after that one,
 * at most `limit` (the edge allows 1-200), with `more` / `gap` saying how to go on.
 */
export async function getChatHistory(
  token: string,
  { after, limit }: { after?: string; limit?: number } = {},
): Promise<HistoryPage> {
  const query = new URLSearchParams();
  if (after !== undefined) query.set("after", after);
  if (limit !== undefined) query.set("limit", String(limit));
  const search = query.toString();
  return parseChatHistory(await request(`/api/chat/history${search ? `?${search}` : ""}`, {}, token));
}

/** Human text for a rate-limit error. */
export function tooManyText(err: ApiError, what = "attempts"): string {
  return err.retryAfter !== undefined
    ? `too many ${what}, try again in ${err.retryAfter} s`
    : `too many ${what}, try again shortly`;
}

/** What the host remembers about this browser's visitor (the HttpOnly cookie says who). */
export async function getMyMemory(): Promise<MemoryAnswer> {
  const answer = parseMemoryAnswer(await request("/api/me/memory"));
  if (answer === null) throw new ApiError(0, "malformed memory answer");
  return answer;
}

/** "Forget me": the header tells the edge the page sent it (a cross-site form cannot). */
export async function forgetMe(): Promise<void> {
  await request("/api/me/memory", { method: "DELETE", headers: { "X-Livestage-Viewer": "1" } });
}
