// The operator's runtime page: what is hot, warm, cold or offloaded right now, what each
// cost to spin up, and where the memory goes. Polls the admin endpoint every 2 s.

import { get } from "./api.js";
import { h, replace, problemBox, setTitle, bytes, ago } from "./dom.js";

const REFRESH_MS = 2000;
const TIERS = ["hot", "warm", "cold", "background"];

function meter(used, budget, label) {
  const share = budget ? Math.min(1, (used || 0) / budget) : 0;
  const level = share > 0.9 ? "high" : share > 0.7 ? "mid" : "low";
  return h(
    "div",
    { class: "meter-row" },
    h("span", { class: "meter-label" }, label),
    h("div", { class: `meter ${level}`, role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": budget || 0, "aria-valuenow": used || 0 }, h("span", { style: { width: `${(share * 100).toFixed(1)}%` } })),
    h("span", { class: "meter-value" }, used == null ? `— / ${bytes(budget)}` : `${bytes(used)} / ${bytes(budget)}`),
  );
}

function ms(value) {
  if (value == null) return "—";
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : value < 1000 ? `${value.toFixed(1)} ms` : `${(value / 1000).toFixed(2)} s`;
}

// data-label names the column where a narrow screen shows each row as a card
const cell = (label, className, ...children) => h("td", { class: className, "data-label": label }, ...children);

function servicesTable(services, workers) {
  const across = workers.shared && workers.live.length > 1;
  const rows = [...services].sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier) || a.name.localeCompare(b.name));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "services cards-when-narrow" },
      h("caption", { class: "sr-only" }, "Services"),
      h("thead", null, h("tr", null, ["Service", "Tier", "State", "Spin-up", "Started", "Last use", "Idle TTL", "Offloads", across ? "Built in" : null].filter(Boolean).map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        null,
        rows.map((s) =>
          h(
            "tr",
            { dataset: { service: s.name, state: s.state } },
            h("th", { scope: "row" }, s.name, s.critical ? h("span", { class: "muted small" }, " critical") : null),
            cell("Tier", null, h("span", { class: `tier tier-${s.tier}` }, s.tier)),
            cell("State", null, h("span", { class: `svc-state state-${s.state}`, title: s.error || "" }, s.state), s.error ? h("span", { class: "muted small" }, ` ${s.error}`) : null),
            cell("Spin-up", "num", ms(s.spin_up_ms)),
            cell("Started", null, s.spun_up_at ? ago(s.spun_up_at) : "—"),
            cell("Last use", null, s.last_used_at ? ago(s.last_used_at) : "—"),
            cell("Idle TTL", "num", s.idle_ttl_s != null ? `${s.idle_ttl_s} s` : "—"),
            cell("Offloads", "num", String(s.offload_count)),
            across ? cell("Built in", "num built", s.name in workers.services_built ? `${workers.services_built[s.name]} of ${workers.live.length} workers` : "—") : null,
          ),
        ),
      ),
    ),
  );
}

// Each panel says whose figures it shows: the answering worker's own (services, caches,
// pools, memory, playback sessions live in each process) or everyone's (the job queue is
// in the database all workers share).
function panel(title, scope, ...children) {
  return h("section", { class: "panel", "aria-label": title }, h("h2", null, title, " ", h("span", { class: `scope scope-${scope === "shared" ? "shared" : "worker"}` }, scope)), ...children);
}

function workersLine(data) {
  const { live, answered_by: pid } = data.workers;
  const others = live.filter((p) => p !== pid);
  const since = `up since ${new Date(data.started_at).toLocaleString()}`;
  if (!others.length) return `answered by worker pid ${pid}, the only one · ${since}`;
  return `answered by worker pid ${pid} (${since}); ${live.length} workers live: the others (pid ${others.join(", ")}) keep their own services, caches and playback sessions`;
}

function view(data) {
  const mine = `this worker (pid ${data.pid})`;
  const counts = {};
  for (const s of data.services) counts[s.state] = (counts[s.state] || 0) + 1;
  const memory = data.memory;
  const pressure = memory.level
    ? h("p", null, h("span", { class: `pressure pressure-${memory.level}` }, memory.level), ` ${memory.ratio != null ? `${(memory.ratio * 100).toFixed(1)} % of ${bytes(memory.limit_bytes)}` : ""}`, memory.source ? h("span", { class: "muted small" }, ` (${memory.source})`) : null)
    : h("p", { class: "muted" }, "Memory pressure is not watched in this process.");
  const sessions = data.reports.playback_sessions || data.reports.playback || [];
  const sessionList = Array.isArray(sessions) ? sessions : sessions.sessions || [];
  return h(
    "div",
    { class: "runtime-grid" },
    h(
      "div",
      { class: "summary" },
      Object.entries(counts).map(([state, n]) => h("span", { class: `svc-state state-${state}` }, `${n} ${state}`)),
      h("span", { class: "muted small worker" }, workersLine(data)),
    ),
    panel("Services", mine, servicesTable(data.services, data.workers)),
    panel(
      "Memory",
      mine,
      pressure,
      memory.categories.map((c) => meter(c.used_bytes, c.budget_bytes, c.connections != null ? `${c.category.replace(/_/g, " ")} (${c.connections} conn.)` : c.category.replace(/_/g, " "))),
    ),
    panel(
      "Caches",
      mine,
      data.caches.length
        ? data.caches.map((c) => h("div", { class: "cache" }, meter(c.bytes, c.budget_bytes, `${c.kind} cache (${c.name})`), h("p", { class: "muted small" }, `${c.entries} entries · ${c.hits} hits · ${c.misses} misses · ${c.evictions} evictions`)))
        : h("p", { class: "muted" }, "No caches in this process."),
    ),
    panel(
      "Connection pools",
      mine,
      data.pools.length
        ? data.pools.map((p) => h("div", { class: "pool" }, h("strong", null, p.name), h("p", { class: "small" }, `${p.active} active · ${p.idle} idle · ${p.size} open (min ${p.min_size}, max ${p.max_size}) · ${p.waiting} waiting · ${p.waits} waits · ${p.timeouts} timeouts`)))
        : h("p", { class: "muted" }, "No pool has started."),
    ),
    panel(
      "Jobs",
      "shared by all workers",
      !data.jobs.available
        ? h("p", { class: "muted" }, "The job queue is not reachable from this process.")
        : [
            h("p", { class: "small" }, data.jobs.depth.length ? data.jobs.depth.map((d) => `${d.count} ${d.kind} ${d.state}`).join(" · ") : "The queue is empty."),
            data.jobs.active.length
              ? h("ul", { class: "jobs" }, data.jobs.active.map((j) => h("li", null, h("strong", null, `${j.kind} #${j.id}`), ` ${j.state}`, j.progress ? h("span", { class: "muted small" }, ` ${j.progress.done}${j.progress.total ? `/${j.progress.total}` : ""} ${j.progress.message}`) : null)))
              : null,
          ],
    ),
    panel(
      "Playback sessions",
      mine,
      sessionList.length
        ? h("ul", { class: "jobs" }, sessionList.map((s) => h("li", null, h("strong", null, s.title || s.item_title || `item ${s.item_id}`), ` ${s.method || ""}`, s.user ? ` · ${s.user}` : "", s.bandwidth_bps != null ? ` · ${(s.bandwidth_bps / 1e6).toFixed(2)} Mb/s` : "")))
        : h("p", { class: "muted" }, "Nobody is watching."),
    ),
  );
}

export async function runtimePage(root) {
  setTitle("Runtime");
  const body = h("div", { "aria-live": "off" });
  const stamp = h("p", { class: "muted small", role: "status" });
  const error = h("div");
  replace(root, h("div", { class: "page admin runtime" }, h("div", { class: "toolbar" }, h("h1", null, "Runtime"), stamp), error, body));
  let timer = 0;
  let stopped = false;
  const controller = new AbortController();
  async function tick() {
    try {
      const data = await get("/api/v1/admin/runtime", { signal: controller.signal });
      replace(body, view(data));
      replace(error);
      stamp.textContent = `Updated ${new Date(data.generated_at).toLocaleTimeString()} · every ${REFRESH_MS / 1000} s`;
    } catch (e) {
      if (e.name === "AbortError" || e.status === 401) return;
      replace(error, problemBox(e));
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  }
  await tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    controller.abort();
  };
}
