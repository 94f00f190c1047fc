import { get, put, query } from "./api.js";
import { h, replace, append, problemBox, loading, setTitle, runtimeText, duration, bytes } from "./dom.js";
import { placeholderUrl } from "./blurhash.js";
import { go } from "./app.js";

// -- cards -------------------------------------------------------------------------------

/** A poster over its blurhash; with ``defer`` the picture is fetched only by ``reveal``. */
export function posterFrame(item, width = 300, { defer = false } = {}) {
  const poster = item.poster;
  const frame = h("div", { class: "poster" });
  const blur = poster ? placeholderUrl(poster.blurhash) : null;
  if (blur) {
    frame.classList.add("blurred");
    frame.style.setProperty("background-image", `url("${blur}")`);
  }
  if (poster && poster.url) {
    const src = `${poster.url}${poster.url.includes("?") ? "&" : "?"}w=${width}`;
    const img = h("img", {
      src: defer ? null : src,
      dataset: defer ? { src } : null,
      alt: "",
      loading: "lazy",
      decoding: "async",
      width: 2,
      height: 3,
    });
    img.addEventListener("load", () => frame.classList.add("loaded"));
    img.addEventListener("error", () => img.remove());
    frame.append(img);
  } else if (!blur) {
    frame.append(h("span", { class: "poster-initial", "aria-hidden": "true" }, (item.title || "?").slice(0, 1)));
  }
  const position = item.user && item.user.position_ms;
  if (position && item.runtime_seconds) {
    const share = Math.min(100, (position / 10 / item.runtime_seconds)).toFixed(1);
    frame.append(h("div", { class: "progress", role: "presentation" }, h("span", { style: { width: `${share}%` } })));
  }
  if (item.user && item.user.played) frame.append(h("span", { class: "badge", "aria-label": "Watched" }, "\u2713"));
  return frame;
}

export function itemLabel(item) {
  if (item.kind === "episode") {
    const code = item.season_number != null && item.episode_number != null ? `S${item.season_number}E${item.episode_number}` : "";
    return [item.series_title, code].filter(Boolean).join(" · ");
  }
  return item.year ? String(item.year) : "";
}

/** Fetch the deferred pictures under ``el``. */
export function reveal(el) {
  for (const img of el.querySelectorAll("img[data-src]")) {
    img.src = img.dataset.src;
    delete img.dataset.src;
  }
}

export function card(item, options) {
  return h(
    "li",
    { class: "card" },
    h(
      "a",
      { href: `#/item/${item.id}`, class: "card-link" },
      posterFrame(item, 300, options),
      h("span", { class: "card-title" }, item.title),
      h("span", { class: "card-sub" }, itemLabel(item)),
    ),
  );
}

function row(title, items, empty) {
  return h(
    "section",
    { class: "row", "aria-label": title },
    h("h2", null, title),
    items.length ? h("ul", { class: "rail" }, items.map(card)) : h("p", { class: "muted" }, empty),
  );
}

const listOf = (data) => (Array.isArray(data) ? data : (data && data.items) || []);

// -- home ----------------------------------------------------------------------------------

export async function homePage(root) {
  setTitle("Home");
  const libraries = listOf(await get("/api/v1/libraries"));
  const sections = [
    ["Continue watching", "/api/v1/continue-watching?limit=20", "Nothing in progress."],
    ["Next up", "/api/v1/next-up?limit=20", "No series under way."],
  ];
  const page = h("div", { class: "page home" });
  replace(root, page);
  if (!libraries.length) {
    append(
      page,
      h(
        "div",
        { class: "empty" },
        h("h1", null, "No libraries yet"),
        h("p", { class: "muted" }, "An administrator adds folders of films or series; they show up here once scanned."),
        h("a", { class: "button primary", href: "#/admin/libraries" }, "Add a library"),
      ),
    );
    return;
  }
  append(page, h("h1", { class: "sr-only" }, "Home"));
  append(
    page,
    h(
      "nav",
      { class: "chips", "aria-label": "Libraries" },
      libraries.map((lib) => h("a", { class: "chip", href: `#/library/${lib.id}` }, lib.name)),
    ),
  );
  const slots = [];
  for (const [title, url, empty] of sections) slots.push([title, url, empty, page.appendChild(h("div", null, loading()))]);
  for (const lib of libraries) {
    const kind = lib.kind === "tv" ? "episode" : "movie";
    slots.push([`Recently added in ${lib.name}`, `/api/v1/recently-added${query({ library: lib.id, kind, limit: 20 })}`, "Nothing added lately.", page.appendChild(h("div", null, loading()))]);
  }
  await Promise.all(
    slots.map(async ([title, url, empty, slot]) => {
      try {
        replace(slot, row(title, listOf(await get(url)), empty));
      } catch (error) {
        if (error.status === 401) throw error;
        replace(slot, h("section", { class: "row" }, h("h2", null, title), problemBox(error)));
      }
    }),
  );
}

// -- library grid ----------------------------------------------------------------------------

const FRAME_BUDGET_MS = 3; // card making per animation frame
const SETTLE_MS = 150; // still for this long: fetch the pictures in view

const SORTS = [
  ["title", "Title"],
  ["date_added", "Date added"],
  ["year", "Year"],
  ["rating", "Rating"],
  ["runtime", "Running time"],
];

export async function libraryPage(root, { id, params }) {
  const library = await get(`/api/v1/libraries/${encodeURIComponent(id)}`);
  setTitle(library.name);
  const endpoint = library.kind === "tv" ? "/api/v1/series" : "/api/v1/movies";
  const state = {
    sort: params.get("sort") || "title",
    order: params.get("order") || "",
    watched: params.get("watched") || "",
    genre: params.get("genre") || "",
  };
  const select = (name, label, options, value) =>
    h(
      "label",
      { class: "control" },
      h("span", null, label),
      h(
        "select",
        {
          name,
          onchange: (event) => {
            state[name] = event.target.value;
            const q = query({ sort: state.sort, order: state.order, watched: state.watched, genre: state.genre });
            go(`/library/${id}${q}`, { replace: true });
          },
        },
        options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
      ),
    );
  const count = h("p", { class: "muted count", "aria-live": "polite" });
  const grid = h("ul", { class: "grid windowed", "aria-label": `${library.name}: items` });
  const status = h("div", { class: "grid-status" });
  replace(
    root,
    h(
      "div",
      { class: "page library" },
      h(
        "div",
        { class: "toolbar" },
        h("h1", null, library.name),
        count,
        h(
          "div",
          { class: "controls" },
          select("sort", "Sort", SORTS, state.sort),
          select("order", "Order", [["", "Default"], ["asc", "Ascending"], ["desc", "Descending"]], state.order),
          select("watched", "Show", [["", "All"], ["false", "Unwatched"], ["true", "Watched"]], state.watched),
        ),
      ),
      grid,
      status,
    ),
  );
  // A windowed grid: every loaded item is kept in memory, but only the rows near the
  // viewport are in the DOM, so 5,000 items cost what 60 do (no long layout or style work).
  const items = [];
  const shown = new Map(); // index -> element
  let layout = { cols: 1, cardW: 0, rowH: 1, gap: 16 };
  let cursor = null;
  let done = false;
  let fetching = false;
  let scheduled = false;
  let settle = 0;
  const controller = new AbortController();

  function measure() {
    const width = grid.clientWidth || 1;
    const small = innerWidth <= 480;
    const gap = small ? 10 : Math.round(Math.min(24, Math.max(12, innerWidth * 0.016)));
    const minCard = small ? (width - 2 * gap) / 3 : Math.min(220, Math.max(120, innerWidth * 0.13));
    const cols = Math.max(1, Math.floor((width + gap) / (minCard + gap)));
    const cardW = (width - gap * (cols - 1)) / cols;
    const rootSize = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const next = { cols, cardW, rowH: cardW * 1.5 + 4.4 * rootSize + gap, gap };
    const moved = next.cols !== layout.cols || next.cardW !== layout.cardW || next.rowH !== layout.rowH;
    layout = next;
    if (moved) for (const [index, el] of shown) place(el, index);
    grid.style.height = `${Math.ceil(items.length / cols) * layout.rowH}px`;
    grid.dataset.loaded = String(items.length);
  }

  // A card's box is fixed (size containment), so placing one never lays out another; it is
  // placed when made and when the layout changes, not on every frame.
  function place(el, index) {
    const { cols, cardW, rowH, gap } = layout;
    el.style.setProperty("width", `${cardW}px`);
    el.style.setProperty("height", `${rowH - gap}px`);
    el.style.setProperty("transform", `translate(${(index % cols) * (cardW + gap)}px, ${Math.floor(index / cols) * rowH}px)`);
  }

  function paint() {
    scheduled = false;
    const began = performance.now();
    const { cols, rowH } = layout;
    const top = grid.getBoundingClientRect().top; // the one layout read, before any write
    const first = Math.max(0, Math.floor(-top / rowH) - 1);
    const last = Math.max(first, Math.ceil((innerHeight - top) / rowH) + 1);
    const from = first * cols;
    const to = Math.min(items.length, (last + 1) * cols);
    for (const [index, el] of shown) {
      if (index < from || index >= to) {
        el.remove();
        shown.delete(index);
      }
    }
    const made = [];
    let pending = false;
    // Rows in view first, then the buffer rows around them; a long jump fills in over a few
    // frames (a few milliseconds of work each), never one long task.
    const visibleFrom = Math.max(from, Math.floor(-top / rowH) * cols);
    const order = [];
    for (let index = visibleFrom; index < to; index++) order.push(index);
    for (let index = from; index < visibleFrom; index++) order.push(index);
    for (const index of order) {
      if (shown.has(index)) continue;
      if (made.length && performance.now() - began > FRAME_BUDGET_MS) {
        pending = true;
        break;
      }
      const el = card(items[index], { defer: true });
      el.setAttribute("aria-posinset", String(index + 1));
      el.setAttribute("aria-setsize", done ? String(items.length) : "-1");
      place(el, index);
      made.push([index, el]);
    }
    insertInOrder(made);
    // Pictures are fetched once the grid holds still: a flick through hundreds of rows
    // shows their blurhashes and fetches and decodes nothing it passes by.
    clearTimeout(settle);
    settle = setTimeout(() => {
      for (const el of shown.values()) reveal(el);
    }, SETTLE_MS);
    if (pending) schedule();
    if (!done && to + cols * 6 >= items.length) more();
  }

  // The DOM keeps the items' order, so Tab walks the cards as they are seen.
  function insertInOrder(made) {
    made.sort((a, b) => a[0] - b[0]);
    const after = [...shown.keys()].sort((a, b) => a - b);
    let k = 0;
    for (const [index, el] of made) {
      while (k < after.length && after[k] < index) k++;
      if (k < after.length) grid.insertBefore(el, shown.get(after[k]));
      else grid.append(el);
    }
    for (const [index, el] of made) shown.set(index, el);
  }

  function schedule() {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(paint);
    }
  }

  function relayout() {
    measure();
    schedule();
  }

  async function more() {
    if (fetching || done) return;
    fetching = true;
    replace(status, loading("Loading more…"));
    try {
      const page = await get(
        `${endpoint}${query({ library: id, sort: state.sort, order: state.order, watched: state.watched, genre: state.genre, cursor, limit: 60 })}`,
        { signal: controller.signal },
      );
      items.push(...listOf(page));
      cursor = page.next_cursor || null;
      done = !cursor;
      if (page.total != null) count.textContent = `${page.total}${page.total_capped ? "+" : ""} items`;
      replace(status, done && !items.length ? h("p", { class: "empty muted" }, "Nothing here yet: scan the library, or change the filters.") : null);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 401) throw error;
      done = true;
      replace(status, problemBox(error, () => {
        done = false;
        more();
      }));
    } finally {
      fetching = false;
    }
    relayout();
  }
  addEventListener("scroll", schedule, { passive: true });
  addEventListener("resize", relayout);
  await more();
  return () => {
    removeEventListener("scroll", schedule);
    removeEventListener("resize", relayout);
    clearTimeout(settle);
    controller.abort();
  };
}

// -- item detail (movie, series, season, episode) ---------------------------------------------

function facts(item) {
  return [
    item.year,
    item.content_rating,
    runtimeText(item.runtime_seconds),
    item.rating ? `\u2605 ${Number(item.rating).toFixed(1)}` : null,
  ].filter(Boolean);
}

function playButton(item) {
  const position = item.user && item.user.position_ms;
  const label = position > 0 ? `Resume from ${duration(position / 1000)}` : "Play";
  return h("a", { class: "button primary", href: `#/play/${item.id}` }, h("span", { "aria-hidden": "true" }, "\u25B6 "), label);
}

function watchedToggle(item) {
  const played = Boolean(item.user && item.user.played);
  const button = h("button", { type: "button", class: "button", "aria-pressed": played ? "true" : "false" }, played ? "Watched" : "Mark watched");
  button.addEventListener("click", async () => {
    const now = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    try {
      await put(`/api/v1/items/${item.id}/state`, { played: now });
      button.setAttribute("aria-pressed", now ? "true" : "false");
      button.textContent = now ? "Watched" : "Mark watched";
    } catch (error) {
      button.after(problemBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export async function itemPage(root, { id }) {
  const item = await get(`/api/v1/items/${encodeURIComponent(id)}`);
  setTitle(item.title);
  const detail = item.detail || item;
  const people = (detail.people || []).slice(0, 12);
  const crumbs = [];
  if (item.series_id && item.series_title) crumbs.push(h("a", { href: `#/item/${item.series_id}` }, item.series_title));
  if (item.kind === "episode" && item.parent_id) crumbs.push(h("a", { href: `#/item/${item.parent_id}` }, `Season ${item.season_number ?? ""}`));
  const playable = item.kind === "movie" || item.kind === "episode";
  const header = h(
    "div",
    { class: "hero" },
    posterFrame(item, 500),
    h(
      "div",
      { class: "hero-text" },
      crumbs.length ? h("p", { class: "crumbs" }, crumbs.map((c, i) => [i ? " / " : "", c])) : null,
      h("h1", null, item.title),
      item.original_title && item.original_title !== item.title ? h("p", { class: "muted" }, item.original_title) : null,
      h("p", { class: "facts" }, facts(item).map((f) => h("span", null, f))),
      detail.tagline ? h("p", { class: "tagline" }, detail.tagline) : null,
      detail.overview ? h("p", { class: "overview" }, detail.overview) : null,
      (item.genres || []).length ? h("p", { class: "genres" }, item.genres.map((g) => h("span", { class: "chip small" }, g))) : null,
      playable ? h("div", { class: "actions" }, playButton(item), watchedToggle(item)) : null,
      people.length
        ? h("dl", { class: "people" }, people.map((p) => [h("dt", null, p.name || String(p)), h("dd", null, p.role || p.type || "")]))
        : null,
    ),
  );
  const page = h("article", { class: "page detail" }, header);
  replace(root, page);
  if (item.kind === "series") {
    const seasons = item.seasons || listOf(await get(`/api/v1/series/${item.id}/seasons`));
    append(page, row("Seasons", seasons, "No seasons found."));
  } else if (item.kind === "season") {
    const episodes = item.episodes || listOf(await get(`/api/v1/seasons/${item.id}/episodes`));
    append(
      page,
      h(
        "section",
        { class: "episodes", "aria-label": "Episodes" },
        h("h2", null, "Episodes"),
        h(
          "ol",
          { class: "episode-list" },
          episodes.map((ep) =>
            h(
              "li",
              null,
              h(
                "a",
                { href: `#/item/${ep.id}`, class: "episode" },
                h("span", { class: "ep-number" }, ep.episode_number ?? ""),
                h("span", { class: "ep-title" }, ep.title),
                h("span", { class: "muted" }, runtimeText(ep.runtime_seconds)),
                ep.user && ep.user.played ? h("span", { class: "badge inline", "aria-label": "Watched" }, "\u2713") : null,
              ),
            ),
          ),
        ),
      ),
    );
  }
  const files = item.files || detail.files || [];
  if (files.length) {
    append(
      page,
      h(
        "section",
        { class: "files" },
        h("h2", null, "Media"),
        h("ul", { class: "file-list" }, files.map((f) => h("li", null, [containerName(f.container), f.width && f.height ? `${f.width}\u00d7${f.height}` : null, f.video_codec, audioOf(f), duration(f.duration), f.size ? bytes(f.size) : null].filter(Boolean).join(" · ")))),
      ),
    );
  }
}

function containerName(container) {
  if (!container) return null;
  const names = container.split(",");
  for (const known of ["mp4", "matroska", "webm", "mpegts", "avi"]) {
    if (names.includes(known)) return { matroska: "MKV", mpegts: "TS" }[known] || known.toUpperCase();
  }
  return names[0].toUpperCase();
}

function audioOf(file) {
  const audio = (file.streams || []).filter((s) => s.kind === "audio");
  return audio.length ? audio.map((s) => [s.codec, s.language].filter(Boolean).join(" ")).join(", ") : null;
}

// -- search ------------------------------------------------------------------------------------

export async function searchPage(root, { params }) {
  const q = params.get("q") || "";
  setTitle(q ? `Search: ${q}` : "Search");
  const input = h("input", { type: "search", name: "q", value: q, "aria-label": "Search", placeholder: "Titles, people…", autocomplete: "off" });
  const results = h("div", { class: "results", "aria-live": "polite" });
  replace(
    root,
    h(
      "div",
      { class: "page search-page" },
      h("h1", null, "Search"),
      h(
        "form",
        {
          role: "search",
          class: "inline-form",
          onsubmit: (event) => {
            event.preventDefault();
            go(`/search?q=${encodeURIComponent(input.value.trim())}`);
          },
        },
        input,
        h("button", { class: "button primary", type: "submit" }, "Search"),
      ),
      results,
    ),
  );
  input.focus();
  if (!q) return;
  replace(results, loading("Searching…"));
  const found = await get(`/api/v1/search${query({ q, limit: 40 })}`);
  const hits = found.hits || [];
  if (!hits.length) {
    replace(results, h("p", { class: "muted" }, `Nothing matches \u201c${q}\u201d.`));
    return;
  }
  replace(
    results,
    h("p", { class: "muted" }, `${hits.length} result${hits.length === 1 ? "" : "s"}`),
    h(
      "ul",
      { class: "hits" },
      hits.map((hit) =>
        h("li", null, h("a", { href: `#/item/${hit.id}`, class: "hit" }, h("span", { class: "hit-title" }, hit.title), h("span", { class: "muted" }, [hit.kind, hit.year].filter(Boolean).join(" · ")))),
      ),
    ),
  );
}
