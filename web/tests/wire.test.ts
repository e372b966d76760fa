// The page's parsers against the Python side's wire models (src/wire/schema.json, written by
// scripts/wire_schema.py from livestage.schemas, the edge's models and livestage.attributes).
// For every model: an object built from its schema parses to itself; each required field,
// dropped, is refused or replaced by the fallback the page documents below; every enum value is
// kept and an unknown one refused (or replaced). A field renamed on either side fails here.
import { describe, expect, it } from "vitest";
import { parseErrorDetail } from "../src/api";
import { chatPacketsOf } from "../src/chat";
import { HOST_STATE_TEXT, findHost, parseHostState } from "../src/host";
import { parseMemoryAnswer, parseMemoryCard, parseMemoryFact, parseMemoryQuestion, parseMemoryShows, parseMemoryTopic } from "../src/memory";
import {
  DEFAULT_CONFIG,
  parseChatAccepted,
  parseChatHistory,
  parseChatMessage,
  parseChatPacket,
  parseChatSource,
  parseConfig,
  parseShowEvent,
  parseStageLayoutEvent,
  parseStagePacket,
  parseStageVisual,
  parseTokenResponse,
} from "../src/types";
import {
  NO_HOST,
  NO_NUMBERS,
  parseChatEntry,
  parseEgress,
  parseFallback,
  parseHostStatus,
  parseNumbers,
  parseShowStatus,
  parseSnapshot,
} from "../src/operator/model";
import schema from "../src/wire/schema.json";

interface JsonSchema {
  $ref?: string;
  type?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
}

/** Keywords the example builder honours; any other one fails the test until it is handled. */
const KNOWN = new Set([
  "$ref", "type", "const", "enum", "anyOf", "pattern", "minLength", "maxLength", "minimum", "maximum", "items",
  "minItems", "maxItems", "properties", "required", "additionalProperties", "title", "description", "default",
]);

const defs = schema.$defs as unknown as Record<string, JsonSchema>;
type Wire = Record<string, unknown>;

function resolve(s: JsonSchema): JsonSchema {
  if (!s.$ref) return s;
  const name = s.$ref.replace("#/$defs/", "");
  const target = defs[name];
  if (!target) throw new Error(`schema.json: unresolved $ref ${s.$ref}`);
  return target;
}

/** A string that meets the constraints: the field's name if it can, else a media path. */
function sampleString(s: JsonSchema, field: string): string {
  const candidates = [field, `/media/${field}.png`, "x", "0123456789abcdef"];
  const fits = (c: string) =>
    c.length >= (s.minLength ?? 0) &&
    c.length <= (s.maxLength ?? Infinity) &&
    (s.pattern === undefined || new RegExp(s.pattern, "u").test(c));
  const found = candidates.find(fits);
  if (found === undefined) throw new Error(`${field}: no sample string fits ${JSON.stringify(s)}; add one`);
  return found;
}

/** A valid value of schema `s` for the field `field`; `seed` keeps sibling numbers distinct. */
function example(raw: JsonSchema, field: string, seed = 1): unknown {
  const s = resolve(raw);
  const unknown = Object.keys(s).filter((k) => !KNOWN.has(k));
  if (unknown.length) throw new Error(`${field}: schema keyword(s) ${unknown.join(", ")} not handled by this test`);
  if ("const" in s) return s.const;
  if (s.enum) return s.enum[0];
  if (s.anyOf) return example(s.anyOf[0], field, seed);
  switch (s.type) {
    case "string":
      return sampleString(s, field);
    case "integer":
    case "number": {
      const low = s.minimum ?? 0;
      const value = low + seed;
      if (value > (s.maximum ?? Infinity)) throw new Error(`${field}: no room for a sample number`);
      return value;
    }
    case "boolean":
      return true;
    case "array":
      if (!s.items || (s.maxItems ?? 1) < 1) throw new Error(`${field}: cannot build an array sample`);
      return [example(s.items, field, seed)];
    case "object": {
      const out: Wire = {};
      Object.entries(s.properties ?? {}).forEach(([name, prop], i) => (out[name] = example(prop, name, i + 1)));
      return out;
    }
    default:
      throw new Error(`${field}: schema type ${String(s.type)} not handled by this test`);
  }
}

const modelExample = (name: string): Wire => example({ $ref: `#/$defs/${name}` }, name) as Wire;

function accepts(parse: (v: unknown) => unknown, v: unknown): boolean {
  try {
    return parse(v) !== null;
  } catch {
    return false;
  }
}

function without(obj: Wire, field: string): Wire {
  const copy = { ...obj };
  delete copy[field];
  return copy;
}

interface Contract {
  /** the page's parser, its result shaped like the wire object (null or a throw: refused) */
  parse: (v: unknown) => unknown;
  /** required fields the page does without, and the value it puts in their place */
  fallback?: Wire;
  /** enum fields whose unknown values the page replaces (instead of refusing the object) */
  unknownEnum?: Wire;
  /** fields the wire leaves out when empty (not required in the schema); the page does without */
  optional?: string[];
}

/** How each model the pages receive is parsed today. */
const CONTRACTS: Record<string, Contract> = {
  PublicConfig: {
    parse: parseConfig,
    fallback: { ...DEFAULT_CONFIG },
    unknownEnum: { layout: "corner", showState: "live" },
  },
  TokenResponse: {
    parse: parseTokenResponse,
    fallback: { roomName: "", agentName: "", identity: "" },
  },
  ChatAccepted: {
    parse: (v) => {
      const id = parseChatAccepted(v);
      return id === null ? null : { id };
    },
  },
  HistoryResponse: {
    parse: parseChatHistory,
    fallback: { messages: [], more: false, gap: false },
  },
  ChatMessage: {
    parse: parseChatMessage,
    fallback: { room: "", authorIdentity: "", authorName: "", avatar: "", kind: "viewer", createdAt: expect.any(Number) },
    unknownEnum: { kind: "viewer" },
    optional: ["source"],
  },
  ChatSource: {
    parse: (v) => parseChatSource(v) ?? null,
    fallback: { userId: "", messageId: "", roles: [], event: "message", amount: "" },
    unknownEnum: { event: "message" },
  },
  ChatMessageEvent: { parse: parseChatPacket, fallback: { seq: 0 } },
  ChatBatchEvent: {
    // the page flattens a batch into its events; put back in the wire's shape to compare
    parse: (v) => {
      const events = chatPacketsOf(v);
      return events.length ? { type: "batch", events } : null;
    },
  },
  ChatRejectedEvent: { parse: parseChatPacket, fallback: { reason: "" } },
  ChatRemovedEvent: { parse: parseChatPacket },
  StageVisual: {
    parse: parseStageVisual,
    fallback: { room: "", sourceUrl: "", title: "", summary: "", topic: "", createdAt: 0, expiresAt: 0 },
  },
  StageLayoutEvent: { parse: parseStageLayoutEvent, fallback: { room: "", createdAt: 0 } },
  ShowEvent: { parse: parseShowEvent, fallback: { room: "", reason: "", createdAt: 0 } },
  // the operator console's events (GET /api/operator/events)
  Snapshot: {
    // the console keeps it as its state; put back in the wire's shape to compare
    parse: (v) => {
      const s = parseSnapshot(v);
      const { room, chat, host, egress, numbers } = s;
      return { room, show: { state: s.show, layout: s.layout }, chat, visuals: [...s.visuals].reverse(), host, egress, numbers };
    },
    fallback: { room: "", show: { state: "live", layout: "corner" }, chat: [], visuals: [], host: NO_HOST, egress: null, numbers: NO_NUMBERS },
  },
  ShowStatus: { parse: parseShowStatus, fallback: { state: "live", layout: "corner" }, unknownEnum: { state: "live", layout: "corner" } },
  ChatEntry: { parse: parseChatEntry, fallback: { outcome: "pending", reason: "", checks: [] }, unknownEnum: { outcome: "pending" } },
  HostStatus: {
    parse: parseHostStatus,
    fallback: { state: "none", jobId: "", voice: "", avatar: "", fallbacks: [], reason: "", since: 0 },
    unknownEnum: { state: "none" },
  },
  Fallback: { parse: parseFallback, fallback: { at: 0, voice: "", avatar: "", reason: "" } },
  Numbers: { parse: parseNumbers, fallback: { ...NO_NUMBERS } },
  // GET /api/me/memory (the viewer's "What <host> remembers about me")
  MemoryAnswer: { parse: parseMemoryAnswer, fallback: { enabled: true, retentionDays: 180 } },
  MemoryCard: {
    parse: parseMemoryCard,
    fallback: { names: [], firstSeen: 0, lastSeen: 0, shows: { count: 0, last: [] }, topics: [], questions: [], facts: [] },
  },
  MemoryFact: { parse: parseMemoryFact, fallback: { at: 0, messageId: "", source: "rules" }, unknownEnum: { source: "rules" } },
  MemoryQuestion: { parse: parseMemoryQuestion, fallback: { messageId: "", askedAt: 0, answer: "", answeredAt: null } },
  MemoryTopic: { parse: parseMemoryTopic, fallback: { at: 0 } },
  MemoryShows: { parse: parseMemoryShows, fallback: { count: 0, last: [] } },
  EgressEvent: { parse: parseEgress, fallback: { id: "", room: "", egressId: "", target: "", error: "", startedAt: 0, createdAt: 0 } },
};

/** Checked on their own below (the page turns an error body into a message, it never refuses one). */
const ERROR_MODELS = ["ErrorResponse", "ErrorItem"];

describe("wire schema", () => {
  it("is checked here for every model it holds", () => {
    expect(Object.keys(defs).sort()).toEqual([...Object.keys(CONTRACTS), ...ERROR_MODELS].sort());
    const channelModels = Object.values(schema.channels).flat();
    for (const name of channelModels) expect(Object.keys(defs)).toContain(name);
  });

  it("lists every field as required (models go out whole) but the ones left out when empty", () => {
    for (const [name, model] of Object.entries(defs)) {
      const optional = CONTRACTS[name]?.optional ?? [];
      const fields = Object.keys(model.properties ?? {}).filter((field) => !optional.includes(field));
      expect(model.required ?? [], name).toEqual(fields);
    }
  });
});

describe.each(Object.entries(CONTRACTS))("%s", (name, contract) => {
  const model = defs[name] ?? {};
  const valid = modelExample(name);
  const required = model.required ?? [];

  it("parses an object built from the schema to itself", () => {
    expect(contract.parse(valid)).toEqual(valid);
  });

  it("names only schema fields in its fallbacks", () => {
    for (const field of [...Object.keys(contract.fallback ?? {}), ...Object.keys(contract.unknownEnum ?? {})]) {
      expect(required, `${name}.${field}`).toContain(field);
    }
  });

  const fallback = contract.fallback ?? {};
  const strict = required.filter((field) => !(field in fallback));
  const lenient = required.filter((field) => field in fallback);

  if (strict.length) {
    it.each(strict)("without %s: refused", (field) => {
      expect(accepts(contract.parse, without(valid, field))).toBe(false);
    });
  }

  if (contract.optional?.length) {
    it.each(contract.optional)("without %s (left out when empty): parsed without it", (field) => {
      expect(contract.parse(without(valid, field))).toEqual(without(valid, field));
    });
  }

  if (lenient.length) {
    it.each(lenient)("without %s: the documented fallback", (field) => {
      expect(contract.parse(without(valid, field))).toEqual({ ...valid, [field]: fallback[field] });
    });
  }

  const enums = Object.entries(model.properties ?? {}).filter(([, p]) => p.enum || "const" in p);
  if (enums.length) {
    it.each(enums)("%s: every value kept, an unknown one refused or replaced", (field, prop) => {
      for (const value of prop.enum ?? [prop.const]) {
        expect(contract.parse({ ...valid, [field]: value })).toEqual({ ...valid, [field]: value });
      }
      const odd = { ...valid, [field]: `not-a-${field}` };
      const replacement = contract.unknownEnum?.[field];
      if (replacement !== undefined) expect(contract.parse(odd)).toEqual({ ...valid, [field]: replacement });
      else expect(accepts(contract.parse, odd)).toBe(false);
    });
  }
});

describe("the stage topic", () => {
  it("tells a visual, a layout and a show state apart, and refuses an unknown type", () => {
    const visual = modelExample("StageVisual");
    const layout = modelExample("StageLayoutEvent");
    const show = modelExample("ShowEvent");
    expect(schema.channels["data topic stageTopic"]).toEqual(["StageVisual", "StageLayoutEvent", "ShowEvent"]);
    expect(parseStagePacket(visual)).toEqual({ type: "visual", visual });
    expect(parseStagePacket(layout)).toEqual(layout);
    expect(parseStagePacket(show)).toEqual(show);
    expect(parseStagePacket({ ...visual, type: "poll" })).toBeNull();
    expect(parseStagePacket({ ...layout, type: "show" })).toBeNull();
    expect(parseStagePacket("layout")).toBeNull();
  });
});

describe("HistoryResponse", () => {
  it("leaves out a message the chat parser refuses", () => {
    const good = modelExample("ChatMessage");
    expect(parseChatHistory({ messages: [without(good, "id"), good] }).messages).toEqual([good]);
  });
});

describe("ErrorResponse", () => {
  const detail = defs.ErrorResponse.properties?.detail.anyOf ?? [];

  it("reads the sentence form as the message", () => {
    const sentence = detail.find((branch) => branch.type === "string");
    expect(sentence).toBeDefined();
    const body = { detail: example(sentence ?? {}, "detail") };
    expect(parseErrorDetail(body)).toEqual({ message: body.detail, fieldErrors: {} });
  });

  it("reads the item form as one message per field, named by the last element of loc", () => {
    const items = detail.find((branch) => branch.type === "array");
    expect(items?.items).toBeDefined();
    const item = example(items?.items ?? {}, "detail") as Wire;
    const field = (item.loc as unknown[]).at(-1) as string;
    expect(parseErrorDetail({ detail: [item] })).toEqual({ message: item.msg, fieldErrors: { [field]: item.msg } });
    // without msg or loc the page still says something: a generic message, or no field
    expect(parseErrorDetail({ detail: [without(item, "msg")] }).fieldErrors).toEqual({ [field]: "invalid value" });
    expect(parseErrorDetail({ detail: [without(item, "loc")] })).toEqual({ message: item.msg, fieldErrors: {} });
    expect(parseErrorDetail({})).toEqual({ message: "", fieldErrors: {} });
  });
});

describe("participant attributes", () => {
  const { hostState, hostPersona } = schema.attributes;

  it("has text for every host state and no other", () => {
    expect(Object.keys(HOST_STATE_TEXT).sort()).toEqual([...hostState.enum].sort());
  });

  it.each(hostState.enum)("finds the host in state %s under the schema's attribute names", (state) => {
    expect(parseHostState(state)).toBe(state);
    const agent = { identity: "agent-1", isAgent: true, attributes: { [hostState.name]: state, [hostPersona.name]: "Nova" } };
    expect(findHost([agent])).toEqual({ identity: "agent-1", state, persona: "Nova" });
  });

  it("refuses a state the schema does not know", () => {
    expect(parseHostState("not-a-state")).toBeNull();
    const agent = { identity: "agent-1", isAgent: true, attributes: { [hostState.name]: "not-a-state" } };
    expect(findHost([agent])).toBeNull();
  });
});
