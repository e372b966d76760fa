"""A small WebM (Matroska) writer for one VP8 video track, and a reader for its duration.

Chromium's WebCodecs `VideoEncoder` gives encoded VP8 frames but no container; this wraps them:
EBML header, Segment with SeekHead, Info (with Duration, so players know the length), Tracks,
one Cluster per key frame (SimpleBlocks) and Cues pointing at each cluster (so a looping
`<video>` can seek back to the start). All sizes are known, so every element has an exact size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Element ids (Matroska spec).
EBML = 0x1A45DFA3
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
SEEK = 0x4DBB
SEEK_ID = 0x53AB
SEEK_POSITION = 0x53AC
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
DURATION = 0x4489
MUXING_APP = 0x4D80
WRITING_APP = 0x5741
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
FLAG_LACING = 0x9C
CODEC_ID = 0x86
DEFAULT_DURATION = 0x23E383
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TIME = 0xB3
CUE_TRACK_POSITIONS = 0xB7
CUE_TRACK = 0xF7
CUE_CLUSTER_POSITION = 0xF1

_MASTER_IDS = {EBML, SEGMENT, SEEK_HEAD, SEEK, INFO, TRACKS, TRACK_ENTRY, VIDEO, CLUSTER, CUES}
_MASTER_IDS |= {CUE_POINT, CUE_TRACK_POSITIONS}


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded video frame: presentation time in microseconds, key frame or not, bytes."""

    timestamp_us: int
    key: bool
    data: bytes


def _id_bytes(element_id: int) -> bytes:
    length = (element_id.bit_length() + 7) // 8
    return element_id.to_bytes(length, "big")


def _size(value: int, width: int | None = None) -> bytes:
    """EBML variable-length size; `width` forces a length (1..8 bytes)."""
    if width is None:
        width = 1
        while value >= (1 << (7 * width)) - 1:
            width += 1
    if value >= (1 << (7 * width)) - 1:
        raise ValueError(f"{value} does not fit in {width} size bytes")
    return ((1 << (7 * width)) | value).to_bytes(width, "big")


def element(element_id: int, payload: bytes) -> bytes:
    return _id_bytes(element_id) + _size(len(payload)) + payload


def uint(element_id: int, value: int, width: int | None = None) -> bytes:
    if width is None:
        width = max(1, (value.bit_length() + 7) // 8)
    return element(element_id, value.to_bytes(width, "big"))


def _float(element_id: int, value: float) -> bytes:
    return element(element_id, struct.pack(">d", value))


def _string(element_id: int, value: str) -> bytes:
    return element(element_id, value.encode("ascii"))


def write_webm(
    frames: Iterable[EncodedFrame],
    *,
    width: int,
    height: int,
    fps: float,
    codec: str = "V_VP8",
    app: str = "livestage-stage-producer",
) -> bytes:
    """A complete WebM file from VP8 frames in presentation order; the first must be a key."""
    ordered = sorted(frames, key=lambda frame: frame.timestamp_us)
    if not ordered:
        raise ValueError("a clip needs at least one frame")
    if not ordered[0].key:
        raise ValueError("the first frame of a clip must be a key frame")
    frame_us = round(1_000_000 / fps)
    duration_ms = (ordered[-1].timestamp_us + frame_us) / 1000

    header = element(
        EBML,
        uint(EBML_VERSION, 1)
        + uint(EBML_READ_VERSION, 1)
        + uint(EBML_MAX_ID_LENGTH, 4)
        + uint(EBML_MAX_SIZE_LENGTH, 8)
        + _string(DOC_TYPE, "webm")
        + uint(DOC_TYPE_VERSION, 2)
        + uint(DOC_TYPE_READ_VERSION, 2),
    )
    info = element(
        INFO,
        uint(TIMECODE_SCALE, 1_000_000)  # timecodes in milliseconds
        + _float(DURATION, duration_ms)
        + _string(MUXING_APP, app)
        + _string(WRITING_APP, app),
    )
    tracks = element(
        TRACKS,
        element(
            TRACK_ENTRY,
            uint(TRACK_NUMBER, 1)
            + uint(TRACK_UID, 1)
            + uint(TRACK_TYPE, 1)  # video
            + uint(FLAG_LACING, 0)
            + _string(CODEC_ID, codec)
            + uint(DEFAULT_DURATION, frame_us * 1000)
            + element(VIDEO, uint(PIXEL_WIDTH, width) + uint(PIXEL_HEIGHT, height)),
        ),
    )

    clusters: list[tuple[int, bytes]] = []  # (start ms, bytes)
    current: list[EncodedFrame] = []
    for frame in ordered:
        if frame.key and current:
            clusters.append(_cluster(current))
            current = []
        current.append(frame)
    clusters.append(_cluster(current))

    # Layout inside the Segment: SeekHead (fixed size), Info, Tracks, Clusters, Cues.
    def seek_head(info_at: int, tracks_at: int, cues_at: int) -> bytes:
        entries = b"".join(
            element(SEEK, element(SEEK_ID, _id_bytes(target)) + uint(SEEK_POSITION, at, 8))
            for target, at in ((INFO, info_at), (TRACKS, tracks_at), (CUES, cues_at))
        )
        return element(SEEK_HEAD, entries)

    seek_size = len(seek_head(0, 0, 0))
    info_at = seek_size
    tracks_at = info_at + len(info)
    position = tracks_at + len(tracks)
    cue_points = b""
    for start_ms, cluster in clusters:
        cue_points += element(
            CUE_POINT,
            uint(CUE_TIME, start_ms)
            + element(
                CUE_TRACK_POSITIONS, uint(CUE_TRACK, 1) + uint(CUE_CLUSTER_POSITION, position)
            ),
        )
        position += len(cluster)
    cues = element(CUES, cue_points)
    body = (
        seek_head(info_at, tracks_at, position)
        + info
        + tracks
        + b"".join(cluster for _, cluster in clusters)
        + cues
    )
    return header + element(SEGMENT, body)


def _cluster(frames: list[EncodedFrame]) -> tuple[int, bytes]:
    start_ms = frames[0].timestamp_us // 1000
    blocks = b""
    for frame in frames:
        relative = frame.timestamp_us // 1000 - start_ms
        if not -32768 <= relative <= 32767:
            raise ValueError("a cluster spans more than 32 s")
        flags = 0x80 if frame.key else 0x00
        payload = _size(1) + struct.pack(">hB", relative, flags) + frame.data
        blocks += element(SIMPLE_BLOCK, payload)
    return start_ms, element(CLUSTER, uint(TIMECODE, start_ms) + blocks)


# --- reading (for checks: duration, size, frame count) -------------------------------------------


def _read_vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int]:
    first = data[at]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        raise ValueError(f"bad EBML length byte at {at}")
    value = first if keep_marker else first & ((0x80 >> (width - 1)) - 1)
    for offset in range(1, width):
        value = (value << 8) | data[at + offset]
    return value, width


def iter_elements(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of each element, depth-first through master elements."""
    end = len(data) if end is None else end
    at = start
    while at < end:
        element_id, id_width = _read_vint(data, at, keep_marker=True)
        size, size_width = _read_vint(data, at + id_width, keep_marker=False)
        payload = at + id_width + size_width
        if payload + size > end:
            raise ValueError(f"element {element_id:#x} at {at} runs past its parent")
        yield element_id, payload, payload + size
        if element_id in _MASTER_IDS:
            yield from iter_elements(data, payload, payload + size)
        at = payload + size


@dataclass(frozen=True)
class WebmInfo:
    doc_type: str
    duration_s: float
    width: int
    height: int
    codec: str
    frames: int
    key_frames: int


def read_webm(data: bytes) -> WebmInfo:
    """Parse a WebM's header, duration, track and block count (raises ValueError if broken)."""
    values: dict[int, bytes] = {}
    frames = keys = 0
    scale = 1_000_000
    for element_id, begin, finish in iter_elements(data):
        payload = data[begin:finish]
        if element_id == SIMPLE_BLOCK:
            frames += 1
            keys += bool(payload[3] & 0x80)
        elif element_id not in _MASTER_IDS:
            values.setdefault(element_id, payload)
    if TIMECODE_SCALE in values:
        scale = int.from_bytes(values[TIMECODE_SCALE], "big")
    duration_raw = values.get(DURATION, b"")
    if len(duration_raw) == 8:
        duration = struct.unpack(">d", duration_raw)[0]
    elif len(duration_raw) == 4:
        duration = struct.unpack(">f", duration_raw)[0]
    else:
        raise ValueError("no Duration in the WebM Info")
    return WebmInfo(
        doc_type=values.get(DOC_TYPE, b"").decode("ascii", "replace"),
        duration_s=duration * scale / 1e9,
        width=int.from_bytes(values.get(PIXEL_WIDTH, b"\0"), "big"),
        height=int.from_bytes(values.get(PIXEL_HEIGHT, b"\0"), "big"),
        codec=values.get(CODEC_ID, b"").decode("ascii", "replace"),
        frames=frames,
        key_frames=keys,
    )
