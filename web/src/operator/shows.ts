// The console's shows: which show it operates on (remembered in the URL, `/operator?show=quiz`),
// the list from GET /api/operator/shows, and the create form's body. Pure except the calls.
import { SHOW_NAME, showFromQuery } from "../show";
import { isObject, str, type ShowState } from "../types";
import { del, get, post } from "./api";

export interface ShowSummary {
  room: string;
  title: string;
  state: ShowState;
  reason: string;
}

/** The shows of a GET /api/operator/shows answer, in its order (the default show first). */
export function parseShows(body: unknown): ShowSummary[] {
  if (!isObject(body) || !Array.isArray(body.shows)) return [];
  const shows: ShowSummary[] = [];
  for (const item of body.shows) {
    if (!isObject(item) || !isObject(item.config)) continue;
    const room = str(item.config.room);
    if (!SHOW_NAME.test(room)) continue;
    shows.push({ room, title: str(item.config.title), state: item.state === "ended" ? "ended" : "live", reason: str(item.reason) });
  }
  return shows;
}

/** The show a console URL names (`?show=`), undefined for the default show. */
export const pickedShow = (search: string): string | undefined => showFromQuery(new URLSearchParams(search));

/** The console's own URL for a show (the default show: no `show`), keeping its other query. */
export function consoleUrl(href: string, show: string | undefined): string {
  const url = new URL(href);
  if (show) url.searchParams.set("show", show);
  else url.searchParams.delete("show");
  return url.pathname + url.search + url.hash;
}

/** An operator API path for a show (`?show=<room>`; the default show needs none). */
export function forShow(path: string, show: string | undefined): string {
  if (!show) return path;
  return `${path}${path.includes("?") ? "&" : "?"}show=${encodeURIComponent(show)}`;
}

/** The preview of a show's stage: a 640×360 /stage with captions, on a `preview` token (no
 * audience: an open console keeps no host running). */
export function previewUrl(show: string | undefined): string {
  const query = new URLSearchParams({ captions: "1", width: "640", height: "360", preview: "1" });
  if (show) query.set("show", show);
  return `/stage?${query.toString()}`;
}

export interface NewShowForm {
  room: string;
  title: string;
  persona: string;
  voice: string;
  avatar: string;
  /** comma or newline separated */
  topics: string;
  /** false: the host does not remember this show's regulars (ShowConfig.memory); default on */
  memory?: boolean;
}

/** The POST /api/operator/shows body of the form: empty choices mean "the deployment's setting". */
export function newShowBody(form: NewShowForm): Record<string, unknown> {
  const topics = form.topics
    .split(/[,\n]/)
    .map((t) => t.trim())
    .filter(Boolean);
  return {
    room: form.room.trim(),
    title: form.title.trim(),
    persona: form.persona.trim() || null,
    voice: form.voice || null,
    avatar: form.avatar || null,
    stage: { topics },
    ...(form.memory === false ? { memory: false } : {}),
  };
}

export const listShows = async (): Promise<ShowSummary[]> => parseShows(await get("/shows"));
export const createShow = (form: NewShowForm): Promise<unknown> => post("/shows", newShowBody(form));
export const deleteShow = (room: string): Promise<unknown> => del(`/shows/${encodeURIComponent(room)}`);
