// Runs in an isolated page of the capture browser: turns one tall page image into a VP8 clip.
// The camera pans down the page and back up (eased, so the loop has no jump); a page with
// nothing to scroll gets a slow zoom instead. Returns the encoded frames as base64 plus an index.
async ({ image, mime, width, height, fps, seconds, bitrate }) => {
  const bytes = Uint8Array.from(atob(image), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: mime }));
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext("2d", { alpha: false });
  const chunks = [];
  let failure = null;
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      chunks.push({ t: chunk.timestamp, key: chunk.type === "key", data });
    },
    error: (error) => {
      failure = String(error);
    },
  });
  encoder.configure({ codec: "vp8", width, height, bitrate, framerate: fps, latencyMode: "realtime" });
  const count = Math.max(1, Math.round(fps * seconds));
  const travel = Math.max(0, bitmap.height - height);
  const keyEvery = Math.max(1, Math.round(fps * 2));
  for (let i = 0; i < count; i++) {
    const phase = (1 - Math.cos((2 * Math.PI * i) / count)) / 2; // 0 -> 1 -> 0, smooth at both ends
    if (travel >= 120) {
      g.drawImage(bitmap, 0, Math.round(travel * phase), width, height, 0, 0, width, height);
    } else {
      const zoom = 1 + 0.08 * phase;
      const w = width / zoom;
      const h = Math.min(height, bitmap.height) / zoom;
      g.fillStyle = "#000";
      g.fillRect(0, 0, width, height);
      g.drawImage(bitmap, (width - w) / 2, (Math.min(height, bitmap.height) - h) / 2, w, h, 0, 0, width, height);
    }
    const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / fps), duration: Math.round(1e6 / fps) });
    encoder.encode(frame, { keyFrame: i % keyEvery === 0 });
    frame.close();
    if (failure) break;
    if (encoder.encodeQueueSize > 4) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await encoder.flush();
  encoder.close();
  bitmap.close();
  if (failure) throw new Error(failure);
  let total = 0;
  for (const chunk of chunks) total += chunk.data.length;
  const joined = new Uint8Array(total);
  const index = [];
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk.data, offset);
    index.push([chunk.t, chunk.key, chunk.data.length]);
    offset += chunk.data.length;
  }
  let text = "";
  for (let i = 0; i < joined.length; i += 0x8000) text += String.fromCharCode.apply(null, joined.subarray(i, i + 0x8000));
  return { index, data: btoa(text) };
}
