/// <reference types="node" />
// The browser bundle must carry no secrets and no server-side key names, and must not build
// markup from strings.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src", import.meta.url));
// Library modules in src/, the pages' entry scripts in src/pages/, the wire schema in src/wire/.
const files = readdirSync(SRC, { recursive: true, encoding: "utf8" })
  .filter((f) => /\.(ts|css|json)$/.test(f))
  .map((f) => ({ name: f, text: readFileSync(join(SRC, f), "utf8") }));

// Built from parts so this file does not itself contain the names it looks for.
const forbidden = [
  new RegExp(["api", "secret"].join("[_-]?"), "i"),
  new RegExp(["secret", "key"].join("[_-]?"), "i"),
  new RegExp(["LIVEKIT", "API", "KEY"].join("_"), "i"),
  new RegExp(["dev", "key"].join(""), "i"),
  new RegExp(["OPENAI", "API", "KEY"].join("_"), "i"),
  new RegExp(["ANAM", "API", "KEY"].join("_"), "i"),
  new RegExp(["GEMINI", "API", "KEY"].join("_"), "i"),
  new RegExp(["GOOGLE", "API", "KEY"].join("_"), "i"),
  /sk-[A-Za-z0-9]{16,}/,
];

describe("src hygiene", () => {
  it("has sources to check", () => {
    expect(files.length).toBeGreaterThan(5);
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining([join("pages", "viewer.ts"), join("pages", "stage.ts"), join("pages", "operator.ts")]));
  });

  it.each(files)("$name names no secret", ({ text }) => {
    for (const re of forbidden) expect(text).not.toMatch(re);
  });

  it.each(files.filter((f) => f.name.endsWith(".ts")))("$name never assigns markup", ({ text }) => {
    expect(text).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write/);
  });
});
