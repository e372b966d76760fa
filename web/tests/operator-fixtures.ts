// Chat lines the console tests build their cases from.
import type { ChatEntry } from "../src/operator/model";
import type { ChatMessage } from "../src/types";

export const chatMessage = (over: Partial<ChatMessage> = {}): ChatMessage => ({
  id: "m1",
  room: "main",
  authorIdentity: "viewer_abcdefgh_0001",
  authorName: "Ada",
  avatar: "fox",
  body: "hi",
  kind: "viewer",
  createdAt: 1_700_000_000_000,
  ...over,
});

export const chatEntry = (over: Partial<ChatEntry> = {}, message: Partial<ChatMessage> = {}): ChatEntry => ({
  message: chatMessage(message),
  outcome: "approved",
  reason: "",
  checks: [],
  ...over,
});
