// The viewer's profile (name + avatar), remembered in localStorage.
// Whatever is read back is validated: storage is user-editable and may hold anything.
// Who the visitor is lives in the edge's HttpOnly cookie: this page never sees or chooses it.
import { ApiError, tooManyText } from "./api";

export interface Profile {
  displayName: string;
  avatar: string;
}

/** Minimal Storage surface so tests can pass a Map-backed fake. */
export type KeyValueStore = Pick<Storage, "getItem" | "setItem">;

export const PROFILE_KEY = "livestage.profile";

// C0/C1 control characters, plus the bidi override/isolate characters that can spoof names.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export const codePointLength = (s: string): number => [...s].length;

/** Returns an error message, or null when the name is acceptable. */
export function validateDisplayName(name: string, maxLength: number): string | null {
  const trimmed = name.trim();
  if (!trimmed) return "please enter a name";
  if (codePointLength(trimmed) > maxLength) return `at most ${maxLength} characters`;
  if (CONTROL_RE.test(trimmed)) return "the name contains invalid characters";
  return null;
}

function safeGet(store: KeyValueStore | null, key: string): string | null {
  try {
    return store ? store.getItem(key) : null;
  } catch {
    return null;
  }
}

function safeSet(store: KeyValueStore | null, key: string, value: string): void {
  try {
    store?.setItem(key, value);
  } catch {
    // storage full or disabled: the profile just won't be remembered
  }
}

/** The browser's localStorage, or null where it is unavailable (privacy modes, sandboxed frames). */
export function browserStore(): KeyValueStore | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/**
 * Reads the stored profile. An invalid name becomes "", an avatar that is not in `avatars`
 * becomes the first allowed avatar. Returns null when nothing usable is stored.
 */
export function loadProfile(store: KeyValueStore | null, avatars: string[], maxNameLength: number): Profile | null {
  const raw = safeGet(store, PROFILE_KEY);
  if (!raw) return null;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return null;
  const rec = data as Record<string, unknown>;
  const name = typeof rec.displayName === "string" ? rec.displayName.trim() : "";
  const displayName = validateDisplayName(name, maxNameLength) === null ? name : "";
  const avatar =
    typeof rec.avatar === "string" && avatars.includes(rec.avatar) ? rec.avatar : (avatars[0] ?? "");
  if (!displayName && !avatar) return null;
  return { displayName, avatar };
}

export function saveProfile(store: KeyValueStore | null, profile: Profile): void {
  safeSet(store, PROFILE_KEY, JSON.stringify({ displayName: profile.displayName.trim(), avatar: profile.avatar }));
}

const AVATAR_EMOJI: Record<string, string> = {
  fox: "🦊",
  owl: "🦉",
  cat: "🐱",
  robot: "🤖",
  panda: "🐼",
  frog: "🐸",
  host: "🎙️",
};

/** A glyph for an avatar id: a known emoji or the id's first letter. */
export function avatarGlyph(avatar: string): string {
  return AVATAR_EMOJI[avatar] ?? ([...avatar][0]?.toUpperCase() || "•");
}

/** The profile form's error slots: one beside each field, one for the whole form. */
export interface ProfileErrorView {
  name: HTMLInputElement;
  nameError: HTMLElement;
  avatarError: HTMLElement;
  profileError: HTMLElement;
}

/**
 * Shows `text` in an error slot, as text (a reason may quote anything; it never becomes markup).
 * An error beside the name marks the name field invalid; the field keeps what was typed.
 */
export function showFieldError(view: ProfileErrorView, target: HTMLElement, text: string): void {
  target.textContent = text;
  target.hidden = !text;
  if (target === view.nameError) view.name.setAttribute("aria-invalid", "true");
}

export function clearFieldErrors(view: ProfileErrorView): void {
  for (const e of [view.nameError, view.avatarError, view.profileError]) {
    e.textContent = "";
    e.hidden = true;
  }
  view.name.removeAttribute("aria-invalid");
}

/**
 * Shows why joining failed where it belongs: a refused name (too long, or refused by moderation:
 * language, impersonating the host or staff) next to the name field, a bad avatar next to the
 * avatar choices, anything else under the form. `otherText` words errors that are not the edge's.
 */
export function showJoinError(view: ProfileErrorView, err: unknown, otherText: (err: unknown) => string): void {
  if (!(err instanceof ApiError)) return showFieldError(view, view.profileError, otherText(err));
  if (err.status === 429) return showFieldError(view, view.profileError, tooManyText(err));
  let shown = false;
  for (const [field, msg] of Object.entries(err.fieldErrors)) {
    if (field === "displayName") showFieldError(view, view.nameError, msg);
    else if (field === "avatar") showFieldError(view, view.avatarError, msg);
    else continue;
    shown = true;
  }
  if (!shown) showFieldError(view, view.profileError, err.message);
}
