// The console's calls to the edge's operator API. The session is an HttpOnly cookie the edge sets
// at sign-in: this page never keeps the operator secret. Every state-changing call carries the
// same-origin header (a cross-site form cannot set it).
import { ApiError, request, tooManyText } from "../api";
import { isObject, num } from "../types";

export const OPERATOR_HEADER = "X-Livestage-Operator";
export const OPERATOR_BASE = "/api/operator";

/** A call the edge refused because the session is missing or expired: show the sign-in form. */
export const isSignedOut = (err: unknown): boolean => err instanceof ApiError && err.status === 401;

function send(method: "POST" | "DELETE", path: string, body?: unknown): Promise<unknown> {
  return request(`${OPERATOR_BASE}${path}`, {
    method,
    headers: { [OPERATOR_HEADER]: "1" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export const post = (path: string, body: unknown = {}): Promise<unknown> => send("POST", path, body);
export const del = (path: string): Promise<unknown> => send("DELETE", path);
export const get = (path: string): Promise<unknown> => request(`${OPERATOR_BASE}${path}`);

/** Signs in; throws an ApiError whose `signInErrorText` is what to show. */
export async function signIn(secret: string): Promise<void> {
  await post("/session", { secret });
}

/** When the session ends (epoch ms), or null when there is none. */
export async function currentSession(): Promise<number | null> {
  try {
    const body = await get("/session");
    return isObject(body) ? num(body.expiresAt) : 0;
  } catch (err) {
    if (isSignedOut(err)) return null;
    throw err;
  }
}

export async function signOut(): Promise<void> {
  await del("/session");
}

export function signInErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return "Wrong operator secret";
    if (err.status === 429) return capitalise(tooManyText(err));
    if (err.status === 503) return `The console is not available: ${err.message}`;
  }
  return errorText(err);
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** What went wrong with an action, in words: the 422 fields with their messages, the edge's detail. */
export function errorText(err: unknown): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  if (err.status === 0) return "Cannot reach the edge: check the connection";
  if (err.status === 401) return "Signed out: sign in again";
  if (err.status === 429) return capitalise(tooManyText(err, "requests"));
  const fields = Object.entries(err.fieldErrors);
  if (err.status === 422 && fields.length) return fields.map(([field, message]) => `${field}: ${message}`).join("; ");
  const retry = err.status === 503 && err.retryAfter !== undefined ? ` (try again in ${err.retryAfter} s)` : "";
  return `${capitalise(err.message)}${retry}`;
}
