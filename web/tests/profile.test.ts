import { describe, expect, it } from "vitest";
import * as profileModule from "../src/profile";
import {
  PROFILE_KEY,
  avatarGlyph,
  loadProfile,
  saveProfile,
  validateDisplayName,
  type KeyValueStore,
} from "../src/profile";

const AVATARS = ["fox", "owl", "cat"];

function memStore(init: Record<string, string> = {}): KeyValueStore & { data: Map<string, string> } {
  const data = new Map(Object.entries(init));
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
  };
}

const throwing: KeyValueStore = {
  getItem: () => {
    throw new Error("SecurityError");
  },
  setItem: () => {
    throw new Error("QuotaExceededError");
  },
};

describe("validateDisplayName", () => {
  it("accepts normal names and counts code points", () => {
    expect(validateDisplayName("Ada", 32)).toBeNull();
    expect(validateDisplayName("  Ada  ", 3)).toBeNull();
    expect(validateDisplayName("🦊".repeat(32), 32)).toBeNull();
  });
  it("rejects empty, too long and control characters", () => {
    expect(validateDisplayName("   ", 32)).toMatch(/enter a name/);
    expect(validateDisplayName("x".repeat(33), 32)).toMatch(/at most 32/);
    expect(validateDisplayName("a\u0000b", 32)).toMatch(/invalid/);
    expect(validateDisplayName("a\u202eb", 32)).toMatch(/invalid/);
  });
});

describe("profile storage", () => {
  it("round-trips", () => {
    const store = memStore();
    saveProfile(store, { displayName: " Ada ", avatar: "owl" });
    expect(JSON.parse(store.data.get(PROFILE_KEY)!)).toEqual({ displayName: "Ada", avatar: "owl" });
    expect(loadProfile(store, AVATARS, 32)).toEqual({ displayName: "Ada", avatar: "owl" });
  });

  it("returns null for nothing or garbage", () => {
    expect(loadProfile(memStore(), AVATARS, 32)).toBeNull();
    expect(loadProfile(memStore({ [PROFILE_KEY]: "{not json" }), AVATARS, 32)).toBeNull();
    expect(loadProfile(memStore({ [PROFILE_KEY]: "[1,2]" }), AVATARS, 32)).toBeNull();
    expect(loadProfile(memStore({ [PROFILE_KEY]: "null" }), AVATARS, 32)).toBeNull();
    expect(loadProfile(memStore({ [PROFILE_KEY]: '"Ada"' }), AVATARS, 32)).toBeNull();
  });

  it("replaces an unknown avatar with the first allowed one", () => {
    const store = memStore({ [PROFILE_KEY]: JSON.stringify({ displayName: "Ada", avatar: "dragon" }) });
    expect(loadProfile(store, AVATARS, 32)).toEqual({ displayName: "Ada", avatar: "fox" });
  });

  it("drops an invalid or wrongly typed name", () => {
    const long = memStore({ [PROFILE_KEY]: JSON.stringify({ displayName: "x".repeat(40), avatar: "cat" }) });
    expect(loadProfile(long, AVATARS, 32)).toEqual({ displayName: "", avatar: "cat" });
    const typed = memStore({ [PROFILE_KEY]: JSON.stringify({ displayName: { html: "<b>" }, avatar: 3 }) });
    expect(loadProfile(typed, AVATARS, 32)).toEqual({ displayName: "", avatar: "fox" });
  });

  it("survives storage that throws", () => {
    expect(loadProfile(throwing, AVATARS, 32)).toBeNull();
    expect(() => saveProfile(throwing, { displayName: "Ada", avatar: "fox" })).not.toThrow();
    expect(loadProfile(null, AVATARS, 32)).toBeNull();
  });
});

describe("visitor id", () => {
  it("is not the page's business: nothing makes, stores or sends one", () => {
    const names = Object.keys(profileModule);
    expect(names.filter((n) => /visitor/i.test(n))).toEqual([]);
    const store = memStore();
    saveProfile(store, { displayName: "Ada", avatar: "fox" });
    expect([...store.data.keys()]).toEqual([PROFILE_KEY]);
  });
});

describe("avatarGlyph", () => {
  it("maps known ids and falls back to a letter", () => {
    expect(avatarGlyph("fox")).toBe("🦊");
    expect(avatarGlyph("zebra")).toBe("Z");
    expect(avatarGlyph("")).toBe("•");
  });
});
