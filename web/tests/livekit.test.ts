// @vitest-environment happy-dom
import { DisconnectReason } from "livekit-client";
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { backoffDelay, countViewers, errorText, isFatalJoinError, pickHostIdentity, shouldRejoin } from "../src/livekit";

describe("backoffDelay", () => {
  it("doubles, caps and jitters", () => {
    expect(backoffDelay(0, () => 1)).toBe(1000);
    expect(backoffDelay(1, () => 1)).toBe(2000);
    expect(backoffDelay(3, () => 1)).toBe(8000);
    expect(backoffDelay(50, () => 1)).toBe(30000);
    expect(backoffDelay(0, () => 0)).toBe(500);
    for (let i = 0; i < 10; i++) {
      const d = backoffDelay(i);
      expect(d).toBeGreaterThanOrEqual(Math.min(30000, 1000 * 2 ** i) / 2);
      expect(d).toBeLessThanOrEqual(30000);
    }
  });
});

describe("pickHostIdentity", () => {
  const ids = ["anam-avatar-host", "avatar-host"];
  it("prefers avatar identities in order", () => {
    expect(
      pickHostIdentity(
        [
          { identity: "agent-1", hasVideo: true },
          { identity: "avatar-host", hasVideo: true },
          { identity: "anam-avatar-host", hasVideo: true },
        ],
        ids,
      ),
    ).toBe("anam-avatar-host");
  });
  it("falls back to anyone publishing video", () => {
    expect(pickHostIdentity([{ identity: "avatar-host", hasVideo: false }, { identity: "x", hasVideo: true }], ids)).toBe("x");
    expect(pickHostIdentity([{ identity: "avatar-host", hasVideo: false }], ids)).toBeNull();
    expect(pickHostIdentity([], ids)).toBeNull();
  });
});

describe("room helpers", () => {
  it("counts viewer_ identities", () => {
    expect(countViewers(["viewer_a_1", "viewer_b_2", "avatar-host", "agent-x", "Viewer_c"])).toBe(2);
  });
  it("rejoins unless the leave was final", () => {
    expect(shouldRejoin(DisconnectReason.CLIENT_INITIATED)).toBe(false);
    expect(shouldRejoin(DisconnectReason.PARTICIPANT_REMOVED)).toBe(false);
    expect(shouldRejoin(DisconnectReason.DUPLICATE_IDENTITY)).toBe(false);
    expect(shouldRejoin(DisconnectReason.SIGNAL_CLOSE)).toBe(true);
    expect(shouldRejoin(DisconnectReason.SERVER_SHUTDOWN)).toBe(true);
    expect(shouldRejoin(undefined)).toBe(true);
  });
  it("classifies join errors", () => {
    expect(isFatalJoinError(new ApiError(422, "bad"))).toBe(true);
    expect(isFatalJoinError(new ApiError(429, "slow", {}, 3))).toBe(false);
    expect(isFatalJoinError(new ApiError(503, "down"))).toBe(false);
    expect(isFatalJoinError(new Error("ws failed"))).toBe(false);
    expect(errorText(new ApiError(429, "slow", {}, 3))).toBe("too many attempts, try again in 3 s");
  });
});
