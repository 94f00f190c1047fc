// The player: the server decides (direct play, remux or transcode to HLS) from what this
// browser says it plays; hls.js plays HLS where Media Source Extensions are needed, the
// browser itself otherwise. Audio, subtitles and quality are chosen by asking the server
// for a new session at the current position, so every method offers the same choices.

import { get, post, del } from "./api.js";
import { h, replace, setTitle, duration } from "./dom.js";
import { go } from "./app.js";

const HLS_URL = new URL("./vendor/hls.js/hls.min.js", import.meta.url).href;
const PROGRESS_EVERY_MS = 10000;
const QUALITIES = [
  ["", "Original"],
  ["20000000", "20 Mb/s"],
  ["8000000", "8 Mb/s"],
  ["4000000", "4 Mb/s"],
  ["2000000", "2 Mb/s"],
  ["1000000", "1 Mb/s"],
];
let hlsLoading = null;

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = HLS_URL;
      script.onload = () => resolve(window.Hls);
      script.onerror = () => {
        hlsLoading = null;
        reject(new Error("the HLS player could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return hlsLoading;
}

const mediaSource = () => window.ManagedMediaSource || window.MediaSource;

/** What this browser plays, in the playback API's terms (ffprobe's codec names). */
export function capabilities() {
  const video = document.createElement("video");
  const mse = mediaSource();
  const can = (type) => Boolean(video.canPlayType(type)) || Boolean(mse && mse.isTypeSupported(type));
  const videos = [];
  if (can('video/mp4; codecs="avc1.640034"')) videos.push({ codec: "h264", profiles: ["constrained baseline", "baseline", "main", "high"], max_level: 5.2 });
  else if (can('video/mp4; codecs="avc1.42E01E"')) videos.push({ codec: "h264", profiles: ["constrained baseline", "baseline"], max_level: 3.0 });
  if (can('video/mp4; codecs="hvc1.1.6.L153.90"')) videos.push({ codec: "hevc", profiles: ["main"] });
  if (can('video/mp4; codecs="vp09.00.40.08"') || can('video/webm; codecs="vp9"')) videos.push({ codec: "vp9" });
  if (can('video/mp4; codecs="av01.0.08M.08"')) videos.push({ codec: "av1" });
  const audios = [];
  if (can('audio/mp4; codecs="mp4a.40.2"')) audios.push({ codec: "aac", max_channels: 2 });
  if (can('audio/webm; codecs="opus"') || can('audio/mp4; codecs="opus"')) audios.push({ codec: "opus", max_channels: 2 });
  if (can("audio/mpeg")) audios.push({ codec: "mp3", max_channels: 2 });
  if (can('audio/mp4; codecs="flac"')) audios.push({ codec: "flac", max_channels: 2 });
  const containers = [];
  if (video.canPlayType("video/mp4")) containers.push("mp4", "m4v", "mov");
  if (video.canPlayType("video/webm")) containers.push("webm");
  const ratio = window.devicePixelRatio || 1;
  return {
    containers,
    video: videos,
    audio: audios,
    max_width: Math.min(16384, Math.max(16, Math.round(screen.width * ratio))),
    max_height: Math.min(16384, Math.max(16, Math.round(screen.height * ratio))),
    segment_format: "fmp4",
    subtitles: ["vtt"],
  };
}

function choice(label, name) {
  const select = h("select", { name });
  const wrap = h("label", { class: "control", hidden: true }, h("span", null, label), select);
  return { select, wrap };
}

function fill({ select, wrap }, entries, current) {
  replace(select, entries.map(([value, text]) => h("option", { value, selected: String(value) === String(current) }, text)));
  wrap.hidden = entries.length < 2;
}

function streamLabel(stream, i) {
  const parts = [stream.title, stream.language, stream.codec, stream.channels ? `${stream.channels} ch` : null].filter(Boolean);
  return parts.length ? parts.join(" · ") : `Track ${i + 1}`;
}

/** The episode after ``item``: the next in its season, else the first of the next season. */
async function nextEpisode(item) {
  if (item.kind !== "episode" || !item.parent_id) return null;
  try {
    const season = await get(`/api/v1/items/${item.parent_id}`);
    const list = season.episodes || [];
    const at = list.findIndex((e) => e.id === item.id);
    if (at >= 0 && at + 1 < list.length) return list[at + 1];
    if (!item.series_id) return null;
    const series = await get(`/api/v1/items/${item.series_id}`);
    const seasons = series.seasons || [];
    const here = seasons.findIndex((s) => s.id === item.parent_id);
    for (const later of seasons.slice(here + 1)) {
      const episodes = (await get(`/api/v1/items/${later.id}`)).episodes || [];
      if (episodes.length) return episodes[0];
    }
    return null;
  } catch (error) {
    if (error.status === 401) throw error;
    return null;
  }
}

export async function playerPage(root, { id }) {
  const item = await get(`/api/v1/items/${encodeURIComponent(id)}`);
  setTitle(`Playing ${item.title}`);
  const file = (item.files || []).find((f) => f.available !== false) || null;
  const streams = (file && file.streams) || [];
  const audioStreams = streams.filter((s) => s.kind === "audio");
  const textStreams = streams.filter((s) => s.kind === "subtitle");
  const video = h("video", { controls: true, playsinline: true, preload: "auto", "aria-label": `Video: ${item.title}` });
  const audio = choice("Audio", "audio");
  const subtitles = choice("Subtitles", "subtitles");
  const quality = choice("Quality", "quality");
  const methodChip = h("span", { class: "chip small", title: "How the server sends this video" });
  const status = h("p", { class: "muted small player-status", "aria-live": "polite" });
  const nextSlot = h("div", { class: "next-slot" });
  replace(
    root,
    h(
      "div",
      { class: "page player" },
      h("div", { class: "player-bar" }, h("a", { class: "button ghost", href: `#/item/${item.id}` }, "\u2190 Back"), h("h1", null, item.title), methodChip),
      h("div", { class: "stage" }, video),
      h("div", { class: "player-controls" }, audio.wrap, subtitles.wrap, quality.wrap, status, nextSlot),
    ),
  );

  const prefs = { audio_stream: null, subtitle_stream: null, max_bitrate: null };
  let session = null;
  let hls = null;
  let lastSent = -1;

  function detach() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    for (const track of video.querySelectorAll("track")) track.remove();
    video.removeAttribute("src");
    video.load();
  }

  async function report(ended = false) {
    if (!session) return;
    const position_ms = Math.round(video.currentTime * 1000);
    if (!ended && Math.abs(position_ms - lastSent) < 1000) return;
    lastSent = position_ms;
    try {
      await post(`/api/v1/playback/sessions/${session.id}/progress`, { position_ms, ended });
      status.textContent = `Position saved at ${duration(video.currentTime)}`;
    } catch (error) {
      if (error.status !== 401) status.textContent = `Could not save the position: ${error.detail || error.title}`;
    }
  }

  async function start(positionMs) {
    const body = { item_id: item.id, capabilities: capabilities() };
    if (file) body.file_id = file.id;
    if (positionMs != null) body.start_position_ms = positionMs;
    for (const [key, value] of Object.entries(prefs)) if (value != null) body[key] = value;
    if (prefs.subtitle_stream != null) body.subtitle_mode = "always";
    const previous = session;
    session = await post("/api/v1/playback/sessions", body);
    if (previous) del(`/api/v1/playback/sessions/${previous.id}`).catch(() => {});
    detach();
    methodChip.textContent = session.method;
    const startAt = (session.start_position_ms || 0) / 1000;
    const urls = session.urls || {};
    if (urls.master && mediaSource()) {
      const Hls = await loadHls();
      hls = new Hls({ enableWorker: false, startPosition: startAt, backBufferLength: 60 });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        status.textContent = `Playback problem (${data.details}); retrying`;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.loadSource(urls.master);
      hls.attachMedia(video);
    } else {
      video.src = urls.direct || urls.master; // native HLS where there is no MSE
      if (startAt) video.addEventListener("loadedmetadata", () => (video.currentTime = startAt), { once: true });
    }
    for (const sub of session.subtitles || []) {
      if (!sub.url) continue;
      const track = h("track", { kind: "subtitles", src: sub.url, srclang: sub.language || "und", label: sub.language || sub.codec, default: sub.selected });
      video.append(track);
    }
    video.play().catch(() => (status.textContent = "Press play to start."));
  }

  fill(audio, audioStreams.map((s, i) => [s.index, streamLabel(s, i)]), (audioStreams.find((s) => s.default) || audioStreams[0] || {}).index);
  fill(subtitles, [["", "Off"], ...textStreams.map((s, i) => [s.index, streamLabel(s, i)])], "");
  fill(quality, QUALITIES, "");
  const restart = async () => {
    try {
      await start(Math.round(video.currentTime * 1000));
    } catch (error) {
      status.textContent = error.detail || error.title;
    }
  };
  audio.select.addEventListener("change", () => {
    prefs.audio_stream = Number(audio.select.value);
    restart();
  });
  subtitles.select.addEventListener("change", () => {
    prefs.subtitle_stream = subtitles.select.value === "" ? null : Number(subtitles.select.value);
    restart();
  });
  quality.select.addEventListener("change", () => {
    prefs.max_bitrate = quality.select.value === "" ? null : Number(quality.select.value);
    restart();
  });

  const ticker = setInterval(() => {
    if (!video.paused) report();
  }, PROGRESS_EVERY_MS);
  video.addEventListener("pause", () => report());
  video.addEventListener("seeked", () => report());
  video.addEventListener("error", () => {
    const err = video.error;
    status.textContent = `The browser cannot play this video${err ? ` (${err.message || `code ${err.code}`})` : ""}.`;
  });

  await start(null); // the server resumes where this person stopped
  const next = await nextEpisode(item);
  if (next) {
    const label = next.season_number != null && next.episode_number != null ? `S${next.season_number}E${next.episode_number} ` : "";
    replace(nextSlot, h("a", { class: "button next", href: `#/play/${next.id}` }, `Next: ${label}${next.title} \u2192`));
  }
  video.addEventListener("ended", async () => {
    await report(true); // saved as watched before the next one starts
    if (next) go(`/play/${next.id}`);
  });
  video.focus();
  return () => {
    clearInterval(ticker);
    const ending = session;
    if (ending) {
      report().finally(() => del(`/api/v1/playback/sessions/${ending.id}`).catch(() => {}));
    }
    detach();
  };
}
