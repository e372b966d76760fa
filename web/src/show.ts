// Which show a page is on. Viewers open `/s/<show>` (`/` is the deployment's default show);
// the OBS stage page takes `?show=<show>`. A show's name is its LiveKit room name.

/** What a show (room) name may be; the edge refuses anything else. */
export const SHOW_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function valid(name: string | null): string | undefined {
  return name !== null && SHOW_NAME.test(name) ? name : undefined;
}

/** The show of a viewer page's path: `/s/<show>` (one trailing slash allowed); undefined for `/`
 * and anything else (the default show). */
export function showFromPath(pathname: string): string | undefined {
  const match = /^\/s\/([^/]+)\/?$/.exec(pathname);
  if (!match) return undefined;
  try {
    return valid(decodeURIComponent(match[1]));
  } catch {
    return undefined; // a malformed %-escape: the edge answers such a path with its 404 page
  }
}

/** The stage page's `?show=` (undefined: the default show). */
export function showFromQuery(query: URLSearchParams): string | undefined {
  return valid(query.get("show"));
}
