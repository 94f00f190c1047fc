// The player: hls.js where the stream is HLS and Media Source Extensions are needed,
// the browser's own playback otherwise (direct play, or native HLS without MSE).

import { get, post, put, del } from "./api.js";
import { h, replace, problemBox, setTitle, duration } from "./dom.js";
import { go } from "./app.js";

const HLS_URL = new URL("./vendor/hls.js/hls.min.js", import.meta.url).href;
let hlsLoading = null;

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_URL;
      script.onload = () => resolve(window.Hls);
      script.onerror = () => reject(new Error("the HLS player could not be loaded"));
      document.head.append(script);
    });
  }
  return hlsLoading;
}

/** What this browser plays, told to the server so it can choose direct play or a transcode. */
export function capabilities() {
  const video = document.createElement("video");
  const mse = window.MediaSource || window.ManagedMediaSource;
  const can = (type) => Boolean(video.canPlayType(type)) || Boolean(mse && mse.isTypeSupported(type));
  const codecs = {
    h264: can('video/mp4; codecs="avc1.640028"'),
    hevc: can('video/mp4; codecs="hvc1.1.6.L120.90"'),
    vp9: can('video/webm; codecs="vp9"') || can('video/mp4; codecs="vp09.00.10.08"'),
    av1: can('video/mp4; codecs="av01.0.05M.08"'),
    aac: can('audio/mp4; codecs="mp4a.40.2"'),
    opus: can('audio/webm; codecs="opus"'),
    mp3: can("audio/mpeg"),
    flac: can('audio/mp4; codecs="flac"'),
    ac3: can('audio/mp4; codecs="ac-3"'),
  };
  return {
    video_codecs: Object.keys(codecs).filter((k) => ["h264", "hevc", "vp9", "av1"].includes(k) && codecs[k]),
    audio_codecs: Object.keys(codecs).filter((k) => ["aac", "opus", "mp3", "flac", "ac3"].includes(k) && codecs[k]),
    containers: ["mp4", "webm", "mov"].filter((c) => can(c === "webm" ? "video/webm" : "video/mp4")),
    hls: Boolean(mse) || Boolean(video.canPlayType("application/vnd.apple.mpegurl")),
    max_width: Math.round(screen.width * (devicePixelRatio || 1)),
    max_height: Math.round(screen.height * (devicePixelRatio || 1)),
  };
}

function options(select, entries, current) {
  replace(select, entries.map(([value, label]) => h("option", { value, selected: String(value) === String(current) }, label)));
  select.closest(".control").hidden = entries.length < 2;
}

async function nextEpisode(item) {
  if (item.kind !== "episode" || !item.parent_id) return null;
  try {
    const data = await get(`/api/v1/seasons/${item.parent_id}/episodes`);
    const list = Array.isArray(data) ? data : data.items || [];
    const at = list.findIndex((e) => e.id === item.id);
    return at >= 0 && at + 1 < list.length ? list[at + 1] : null;
  } catch {
    return null;
  }
}

export async function playerPage(root, { id }) {
  const item = await get(`/api/v1/items/${encodeURIComponent(id)}`);
  setTitle(`Playing ${item.title}`);
  const resumeMs = (item.user && item.user.position_ms) || 0;
  const playback = await post("/api/v1/playback/sessions", { item_id: item.id, start_ms: resumeMs, ...capabilities() });
  const urls = playback.urls || {};
  const video = h("video", { controls: true, playsinline: true, preload: "auto", "aria-label": `Video: ${item.title}` });
  const audioSelect = h("select", { name: "audio" });
  const textSelect = h("select", { name: "subtitles" });
  const qualitySelect = h("select", { name: "quality" });
  const control = (label, select) => h("label", { class: "control", hidden: true }, h("span", null, label), select);
  const status = h("p", { class: "muted small player-status", "aria-live": "polite" });
  const nextSlot = h("div", { class: "next-slot" });
  const method = playback.method || playback.decision?.method || (urls.direct ? "direct" : "hls");
  replace(
    root,
    h(
      "div",
      { class: "page player" },
      h(
        "div",
        { class: "player-bar" },
        h("a", { class: "button ghost", href: `#/item/${item.id}` }, "\u2190 Back"),
        h("h1", null, item.title),
        h("span", { class: "chip small", title: "How the server sends this video" }, method),
      ),
      h("div", { class: "stage" }, video),
      h(
        "div",
        { class: "player-controls" },
        control("Audio", audioSelect),
        control("Subtitles", textSelect),
        control("Quality", qualitySelect),
        status,
        nextSlot,
      ),
    ),
  );
  let hls = null;
  const useHls = Boolean(urls.master) && Boolean(window.MediaSource || window.ManagedMediaSource);
  if (urls.master && useHls) {
    const Hls = await loadHls();
    hls = new Hls({ enableWorker: false, startPosition: resumeMs / 1000, backBufferLength: 60 });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      options(qualitySelect, [[-1, "Auto"], ...hls.levels.map((l, i) => [i, l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`])], -1);
    });
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => {
      options(audioSelect, hls.audioTracks.map((t, i) => [i, t.name || t.lang || `Track ${i + 1}`]), hls.audioTrack);
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      options(textSelect, [[-1, "Off"], ...hls.subtitleTracks.map((t, i) => [i, t.name || t.lang || `Track ${i + 1}`])], hls.subtitleTrack);
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) {
        status.textContent = `Playback error: ${data.details}`;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      }
    });
    qualitySelect.addEventListener("change", () => (hls.currentLevel = Number(qualitySelect.value)));
    audioSelect.addEventListener("change", () => (hls.audioTrack = Number(audioSelect.value)));
    textSelect.addEventListener("change", () => (hls.subtitleTrack = Number(textSelect.value)));
    hls.loadSource(urls.master);
    hls.attachMedia(video);
  } else {
    video.src = urls.direct || urls.master;
    video.addEventListener("loadedmetadata", () => {
      if (resumeMs && !urls.master) video.currentTime = resumeMs / 1000;
      const tracks = Array.from(video.audioTracks || []);
      options(audioSelect, tracks.map((t, i) => [i, t.label || t.language || `Track ${i + 1}`]), tracks.findIndex((t) => t.enabled));
    }, { once: true });
    audioSelect.addEventListener("change", () => {
      Array.from(video.audioTracks || []).forEach((t, i) => (t.enabled = i === Number(audioSelect.value)));
    });
    for (const [i, sub] of (urls.subtitles || []).entries()) {
      video.append(h("track", { kind: "subtitles", src: sub.url, srclang: sub.language || "und", label: sub.title || sub.language || `Subtitles ${i + 1}` }));
    }
    const texts = Array.from(video.textTracks);
    options(textSelect, [[-1, "Off"], ...texts.map((t, i) => [i, t.label])], -1);
    textSelect.addEventListener("change", () => texts.forEach((t, i) => (t.mode = i === Number(textSelect.value) ? "showing" : "disabled")));
  }

  // Progress: every 10 s while playing, at pause, at seek's end and when leaving.
  let lastSent = -1;
  async function report(force = false) {
    const position_ms = Math.round(video.currentTime * 1000);
    if (!force && Math.abs(position_ms - lastSent) < 1000) return;
    lastSent = position_ms;
    const body = { position_ms, paused: video.paused };
    try {
      if (playback.id) await post(`/api/v1/playback/sessions/${playback.id}/progress`, body);
      else await put(`/api/v1/items/${item.id}/state`, { position_ms });
      status.textContent = `Position saved at ${duration(video.currentTime)}`;
    } catch (error) {
      if (error.status !== 401) status.textContent = `Could not save the position: ${error.detail || error.title}`;
    }
  }
  const ticker = setInterval(() => {
    if (!video.paused) report();
  }, 10000);
  video.addEventListener("pause", () => report(true));
  video.addEventListener("seeked", () => report(true));
  video.addEventListener("error", () => {
    const err = video.error;
    status.textContent = `The browser cannot play this video${err ? ` (${err.message || `code ${err.code}`})` : ""}.`;
  });
  const next = await nextEpisode(item);
  if (next) {
    const button = h("a", { class: "button", href: `#/play/${next.id}` }, `Next: ${next.title} \u2192`);
    replace(nextSlot, button);
    video.addEventListener("ended", () => go(`/play/${next.id}`));
  }
  video.play().catch(() => {
    status.textContent = "Press play to start.";
  });
  video.focus();
  return () => {
    clearInterval(ticker);
    report(true);
    if (playback.id) del(`/api/v1/playback/sessions/${playback.id}`).catch(() => {});
    if (hls) hls.destroy();
    video.removeAttribute("src");
    video.load();
  };
}

export { problemBox };
