// Joining the LiveKit room as a (receive-only) viewer, and staying joined.
// livekit-client handles short network trouble itself (state "reconnecting"); when it gives up
// (RoomEvent.Disconnected), we mint a fresh token and join again with exponential backoff.
import {
  ConnectionState,
  DisconnectReason,
  LogLevel,
  Room,
  RoomEvent,
  Track,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteVideoTrack,
  setLogLevel,
} from "livekit-client";
import { ApiError, mintToken, type TokenRequest } from "./api";
import { chatPacketsOf, decodeChatPayload } from "./chat";
import { TRANSCRIPTION_TOPIC, findHost, type HostState } from "./host";
import {
  decodeJson,
  parseStagePacket,
  type AppConfig,
  type ChatPacket,
  type Layout,
  type ShowState,
  type StageVisual,
  type TokenResponse,
} from "./types";

// livekit-client logs every signal step at "info"; `?debug=1` on either page brings that back.
setLogLevel(new URLSearchParams(globalThis.location?.search ?? "").has("debug") ? LogLevel.debug : LogLevel.warn);

// kept in connection.ts (no livekit-client there) so the operator console can use them without it
export { STATE_TEXT, backoffDelay, type ConnState } from "./connection";
import { backoffDelay, type ConnState } from "./connection";

/** Disconnect reasons after which we do not rejoin by ourselves. */
const FINAL_REASONS = new Set<DisconnectReason | undefined>([
  DisconnectReason.CLIENT_INITIATED,
  DisconnectReason.DUPLICATE_IDENTITY,
  DisconnectReason.PARTICIPANT_REMOVED,
]);

export function shouldRejoin(reason: DisconnectReason | undefined): boolean {
  return !FINAL_REASONS.has(reason);
}

/** Errors from the token endpoint that a retry cannot fix. */
export function isFatalJoinError(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 400 || err.status === 403 || err.status === 422);
}

export interface VideoCandidate {
  identity: string;
  hasVideo: boolean;
}

/**
 * Whose video is the host: the first of `avatarIdentities` (in that order) that publishes video,
 * else any participant publishing video, else nobody.
 */
export function pickHostIdentity(candidates: VideoCandidate[], avatarIdentities: string[]): string | null {
  const withVideo = candidates.filter((c) => c.hasVideo);
  for (const id of avatarIdentities) {
    if (withVideo.some((c) => c.identity === id)) return id;
  }
  return withVideo[0]?.identity ?? null;
}

export function countViewers(identities: Iterable<string>): number {
  let n = 0;
  for (const id of identities) if (id.startsWith("viewer_")) n++;
  return n;
}

export interface SessionHooks {
  onState(state: ConnState, detail?: string): void;
  /** after every successful (re)join */
  onJoined?(token: TokenResponse, rejoin: boolean): void;
  onChatPacket?(packet: ChatPacket): void;
  onStageVisual?(visual: StageVisual): void;
  /** the operator switched the stage layout */
  onLayout?(layout: Layout): void;
  /** the operator ended or started the show */
  onShow?(state: ShowState): void;
  /** the host's video now plays in `video` (identity) or there is none (null) */
  onHostVideo?(identity: string | null): void;
  onViewerCount?(count: number): void;
  /** the host agent's state changed, or it left (null) */
  onHost?(host: { identity: string; state: HostState; persona: string } | null): void;
  /** a chunk of the host's spoken words (captions); `segmentId` groups one utterance */
  onCaption?(segmentId: string, chunk: string): void;
  /** the utterance `segmentId` is complete */
  onCaptionEnd?(segmentId: string): void;
  onAudioBlocked?(blocked: boolean): void;
  /** automatic rejoin stopped for good (fatal token error or a final disconnect reason) */
  onGaveUp?(detail: string, err?: unknown): void;
}

export interface SessionOptions {
  config: AppConfig;
  /** called for every token mint, so a changed profile is picked up */
  tokenRequest: () => TokenRequest;
  /** persistent, visible-in-layout (may be transparent) element the host's video is attached to */
  video: HTMLVideoElement;
  /** where host audio elements are put */
  audioSink: HTMLElement;
  hooks: SessionHooks;
}

export class LiveSession {
  private room: Room | null = null;
  private tokenInfo: TokenResponse | null = null;
  private freshToken: string | null = null;
  private hostTrack: RemoteVideoTrack | null = null;
  private hostIdentity: string | null = null;
  private stopped = true;
  private rejoining: Promise<void> | null = null;
  private renewing: Promise<void> | null = null;
  /** the room whose connect() completed; only its Disconnected event triggers a rejoin */
  private joinedRoom: Room | null = null;
  private cancelSleep: (() => void) | null = null;
  private joinCount = 0;
  /** Chat payloads decode one after the other (so their packets keep their order). */
  private chatDecoding: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SessionOptions) {}

  /** The current LiveKit token (server-refreshed when LiveKit sent a newer one), for /api/chat. */
  get token(): string | null {
    return this.freshToken ?? this.tokenInfo?.token ?? null;
  }

  get identity(): string | null {
    return this.room?.localParticipant.identity || this.tokenInfo?.identity || null;
  }

  get active(): boolean {
    return !this.stopped;
  }

  /** Join once; errors are thrown (e.g. ApiError 422 / 429 from the token endpoint). */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.connectOnce();
    } catch (err) {
      this.stopped = true;
      // an HTTP error is the caller's to show (e.g. next to a form field); a LiveKit failure is ours
      if (err instanceof ApiError) this.opts.hooks.onState("idle");
      else this.opts.hooks.onState("disconnected", errorText(err));
      throw err;
    }
  }

  /**
   * Join, retrying with backoff until it works (the OBS page: the edge or LiveKit may come up
   * after it). Stops on a fatal error.
   */
  startWithRetry(): void {
    this.stopped = false;
    void this.rejoinLoop("starting", 0);
  }

  /** Leave the room and stop rejoining. */
  async leave(): Promise<void> {
    this.stopped = true;
    this.cancelSleep?.();
    await this.teardown();
    this.tokenInfo = null;
    this.freshToken = null;
    this.opts.hooks.onState("idle");
  }

  /** Mint a new token and rejoin now (e.g. after /api/chat said 401). Resolves when joined. */
  renew(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("not joined"));
    if (this.rejoining) return this.rejoining;
    this.renewing ??= (async () => {
      await this.teardown();
      try {
        await this.connectOnce();
      } catch (err) {
        void this.rejoinLoop(errorText(err), 1);
        throw err;
      }
    })().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  async startAudio(): Promise<void> {
    await this.room?.startAudio();
    this.opts.hooks.onAudioBlocked?.(!(this.room?.canPlaybackAudio ?? true));
  }

  private async connectOnce(): Promise<void> {
    const { hooks } = this.opts;
    hooks.onState("connecting");
    const info = await mintToken(this.opts.tokenRequest());
    if (this.stopped) return;
    const room = new Room({ adaptiveStream: true, dynacast: true });
    this.wire(room);
    this.readCaptions(room);
    this.room = room;
    try {
      await room.connect(info.url, info.token, { autoSubscribe: true });
    } catch (err) {
      room.removeAllListeners();
      if (this.room === room) this.room = null;
      await room.disconnect().catch(() => undefined);
      throw err;
    }
    if (this.stopped || this.room !== room) {
      room.removeAllListeners();
      await room.disconnect();
      return;
    }
    this.joinedRoom = room;
    this.tokenInfo = info;
    this.freshToken = null;
    room.engine?.on("tokenRefreshed", (token: string) => {
      if (this.room === room) this.freshToken = token;
    });
    hooks.onState("connected");
    this.updateViewers();
    this.updateHost();
    this.updateHostState();
    hooks.onAudioBlocked?.(!room.canPlaybackAudio);
    hooks.onJoined?.(info, this.joinCount++ > 0);
  }

  private wire(room: Room): void {
    const { hooks, config } = this.opts;
    const mine = () => this.room === room;
    room
      .on(RoomEvent.ConnectionStateChanged, (state) => {
        if (!mine()) return;
        if (state === ConnectionState.Reconnecting || state === ConnectionState.SignalReconnecting) {
          hooks.onState("reconnecting");
        } else if (state === ConnectionState.Connected && this.joinedRoom === room) {
          // livekit-client resumed by itself: data sent meanwhile may be lost, so treat it as a rejoin
          hooks.onState("connected");
          this.updateViewers();
          this.updateHost();
          this.updateHostState();
          if (this.tokenInfo) hooks.onJoined?.(this.tokenInfo, true);
        }
      })
      .on(RoomEvent.Disconnected, (reason) => {
        if (!mine() || this.joinedRoom !== room || this.stopped) return;
        this.room = null;
        this.joinedRoom = null;
        room.removeAllListeners();
        this.detachAll(room);
        if (shouldRejoin(reason)) {
          void this.rejoinLoop("connection lost", 0);
        } else {
          this.stopped = true;
          const detail = reasonText(reason);
          hooks.onState("disconnected", detail);
          hooks.onGaveUp?.(detail);
        }
      })
      .on(RoomEvent.ParticipantConnected, () => {
        if (!mine()) return;
        this.updateViewers();
        this.updateHostState();
      })
      .on(RoomEvent.ParticipantDisconnected, () => {
        if (!mine()) return;
        this.updateViewers();
        this.updateHost();
        this.updateHostState();
      })
      .on(RoomEvent.ParticipantAttributesChanged, () => mine() && this.updateHostState())
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
        if (!mine()) return;
        if (track.kind === Track.Kind.Audio) {
          const el = track.attach();
          this.opts.audioSink.append(el);
        } else {
          this.updateHost();
        }
      })
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
        if (!mine()) return;
        if (track.kind === Track.Kind.Audio) {
          track.detach().forEach((el) => el.remove());
        } else {
          this.updateHost();
        }
      })
      .on(RoomEvent.AudioPlaybackStatusChanged, () => {
        if (mine()) hooks.onAudioBlocked?.(!room.canPlaybackAudio);
      })
      .on(RoomEvent.DataReceived, (payload, _participant, _kind, topic) => {
        if (!mine()) return;
        if (topic === config.chatTopic) {
          // decoded one after the other (a compressed batch inflates asynchronously): in order
          this.chatDecoding = this.chatDecoding
            .then(() => decodeChatPayload(payload))
            .then((decoded) => {
              if (!mine()) return;
              for (const packet of chatPacketsOf(decoded)) hooks.onChatPacket?.(packet);
            });
        } else if (topic === config.stageTopic) {
          const packet = parseStagePacket(decodeJson(payload));
          if (packet?.type === "visual") hooks.onStageVisual?.(packet.visual);
          else if (packet?.type === "layout") hooks.onLayout?.(packet.layout);
          else if (packet?.type === "show") hooks.onShow?.(packet.state);
        }
      });
  }

  /** Captions: the agents' transcription streams, from an AGENT-kind participant only. */
  private readCaptions(room: Room): void {
    const { hooks } = this.opts;
    room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, sender) => {
      const from = room.remoteParticipants.get(sender.identity);
      if (this.room !== room || !from?.isAgent) return;
      const segmentId = reader.info.attributes?.["lk.segment_id"] || reader.info.id;
      void (async () => {
        try {
          for await (const chunk of reader) {
            if (this.room !== room) return;
            hooks.onCaption?.(segmentId, chunk);
          }
        } catch {
          // an aborted stream (the host was interrupted) ends the caption like a finished one
        }
        if (this.room === room) hooks.onCaptionEnd?.(segmentId);
      })();
    });
  }

  private updateHostState(): void {
    const room = this.room;
    const participants = room ? Array.from(room.remoteParticipants.values()) : [];
    this.opts.hooks.onHost?.(
      findHost(participants.map((p) => ({ identity: p.identity, isAgent: p.isAgent, attributes: p.attributes }))),
    );
  }

  private updateViewers(): void {
    const room = this.room;
    if (!room) return;
    const ids = [room.localParticipant.identity, ...Array.from(room.remoteParticipants.values(), (p) => p.identity)];
    this.opts.hooks.onViewerCount?.(countViewers(ids));
  }

  private videoOf(p: RemoteParticipant): RemoteVideoTrack | null {
    const pubs = Array.from(p.videoTrackPublications.values()).filter((pub) => pub.isSubscribed && pub.videoTrack);
    const cam = pubs.find((pub) => pub.source === Track.Source.Camera) ?? pubs[0];
    return (cam?.videoTrack as RemoteVideoTrack | undefined) ?? null;
  }

  private updateHost(): void {
    const room = this.room;
    const participants = room ? Array.from(room.remoteParticipants.values()) : [];
    const identity = pickHostIdentity(
      participants.map((p) => ({ identity: p.identity, hasVideo: this.videoOf(p) !== null })),
      this.opts.config.avatarIdentities,
    );
    const participant = participants.find((p) => p.identity === identity);
    const track = participant ? this.videoOf(participant) : null;
    if (track === this.hostTrack) return;
    this.hostTrack?.detach(this.opts.video);
    this.hostTrack = track;
    this.hostIdentity = track ? identity : null;
    if (track) track.attach(this.opts.video);
    this.opts.hooks.onHostVideo?.(this.hostIdentity);
  }

  private detachAll(room: Room): void {
    this.opts.hooks.onHost?.(null);
    this.hostTrack?.detach(this.opts.video);
    if (this.hostTrack) {
      this.hostTrack = null;
      this.hostIdentity = null;
      this.opts.hooks.onHostVideo?.(null);
    }
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.audioTrackPublications.values()) pub.audioTrack?.detach().forEach((el) => el.remove());
    }
    this.opts.audioSink.replaceChildren();
  }

  private async teardown(): Promise<void> {
    const room = this.room;
    this.room = null;
    this.joinedRoom = null;
    if (!room) return;
    room.removeAllListeners();
    this.detachAll(room);
    await room.disconnect().catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = window.setTimeout(done, ms);
      function done() {
        window.clearTimeout(timer);
        resolve();
      }
      this.cancelSleep = done;
    });
  }

  private async rejoinLoop(why: string, firstAttempt: number): Promise<void> {
    if (this.rejoining) return;
    const { hooks } = this.opts;
    let resolveDone!: () => void;
    this.rejoining = new Promise<void>((r) => (resolveDone = r));
    let attempt = firstAttempt;
    let detail = why;
    let lastError: unknown;
    try {
      while (!this.stopped) {
        let wait = attempt === 0 && why === "starting" ? 0 : backoffDelay(attempt);
        if (lastError instanceof ApiError && lastError.retryAfter) wait = Math.max(wait, lastError.retryAfter * 1000);
        if (wait > 0) {
          hooks.onState("disconnected", `${detail}, retrying in ${Math.ceil(wait / 1000)} s`);
          await this.sleep(wait);
        }
        if (this.stopped) break;
        try {
          await this.connectOnce();
          return;
        } catch (err) {
          lastError = err;
          detail = errorText(err);
          if (isFatalJoinError(err)) {
            this.stopped = true;
            hooks.onState("disconnected", detail);
            hooks.onGaveUp?.(detail, err);
            return;
          }
          attempt++;
        }
      }
    } finally {
      resolveDone();
      this.rejoining = null;
    }
  }
}

function reasonText(reason: DisconnectReason | undefined): string {
  switch (reason) {
    case DisconnectReason.DUPLICATE_IDENTITY:
      return "joined from another tab";
    case DisconnectReason.PARTICIPANT_REMOVED:
      return "removed from the room";
    case DisconnectReason.CLIENT_INITIATED:
      return "left";
    default:
      return "disconnected";
  }
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429) return err.retryAfter ? `too many attempts, try again in ${err.retryAfter} s` : "too many attempts";
    return err.message;
  }
  if (err instanceof Error && err.message) return err.message;
  return "connection failed";
}
