import { get, post, put, del, patch, hasRoute } from "./api.js";
import { h, replace, append, problemBox, loading, setTitle, ago, toast } from "./dom.js";

function field(label, input, hint) {
  input.id = input.id || `f-${input.name}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "cards-when-narrow" },
      h("caption", { class: "sr-only" }, caption),
      h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows.map((cells) => h("tr", null, cells.map((c, i) => h("td", { "data-label": headers[i] || null }, c))))),
    ),
  );
}

function progressBar(fraction, label) {
  const value = fraction == null ? null : Math.round(fraction * 100);
  return h(
    "div",
    { class: "bar", role: "progressbar", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": value ?? undefined },
    h("span", { class: value == null ? "indeterminate" : "", style: { width: value == null ? "30%" : `${value}%` } }),
  );
}

// -- libraries --------------------------------------------------------------------------------

export async function librariesPage(root, { params }) {
  setTitle("Libraries");
  const first = params.get("first") === "1";
  const list = h("div", null, loading());
  const name = h("input", { name: "name", required: true, placeholder: "Films" });
  const kind = h("select", { name: "kind" }, h("option", { value: "movies" }, "Films"), h("option", { value: "tv" }, "Series"));
  const folder = h("input", { name: "root", required: true, placeholder: "/srv/media/films", spellcheck: "false", autocapitalize: "none" });
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const watchers = new Map();
  const form = h(
    "form",
    {
      class: "card-form",
      "aria-labelledby": "add-library",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        try {
          const lib = await post("/api/v1/libraries", { name: name.value.trim(), kind: kind.value, roots: [folder.value.trim()] });
          await post(`/api/v1/libraries/${lib.id}/scan`);
          form.reset();
          toast(`Library \u201c${lib.name}\u201d added; its first scan is running.`);
          await refresh();
        } catch (error) {
          replace(errors, problemBox(error));
        }
      },
    },
    h("h2", { id: "add-library" }, first ? "Add your first library" : "Add a library"),
    h("div", { class: "form-grid" }, field("Name", name), field("Kind", kind), field("Folder on the server", folder, "An absolute path the server can read. Files are only ever read.")),
    errors,
    h("button", { class: "button primary", type: "submit" }, "Add and scan"),
  );

  function watch(lib, cell) {
    if (!lib.scan_job_id || watchers.has(lib.id)) return;
    const tick = async () => {
      try {
        const job = await get(`/api/v1/jobs/${lib.scan_job_id}`);
        const p = job.progress;
        replace(cell, h("div", { class: "scan" }, progressBar(p && p.fraction, `Scan of ${lib.name}`), h("span", { class: "small" }, `${job.state}${p ? ` · ${p.done}${p.total ? `/${p.total}` : ""} ${p.message || ""}` : ""}`)));
        if (["queued", "running", "scheduled"].includes(job.state)) return;
        stop();
        await refresh();
      } catch (error) {
        stop();
        if (error.status !== 404) replace(cell, problemBox(error));
      }
    };
    const timer = setInterval(tick, 1000);
    const stop = () => {
      clearInterval(timer);
      watchers.delete(lib.id);
    };
    watchers.set(lib.id, stop);
    tick();
  }

  async function refresh() {
    const libs = (await get("/api/v1/libraries")).items || [];
    const rows = libs.map((lib) => {
      const scanCell = h("div", null, lib.last_scan_finished ? `finished ${ago(lib.last_scan_finished)}` : lib.last_scan_started ? "running" : "never");
      const scan = h("button", { type: "button", class: "button small", onclick: async () => {
        try {
          const started = await post(`/api/v1/libraries/${lib.id}/scan`);
          lib.scan_job_id = started.job_id;
          watch(lib, scanCell);
        } catch (error) {
          toast(error.detail || error.title);
        }
      } }, "Scan now");
      const remove = h("button", { type: "button", class: "button small danger", onclick: async () => {
        if (!confirm(`Delete the library \u201c${lib.name}\u201d? Its files stay on disk.`)) return;
        try {
          await del(`/api/v1/libraries/${lib.id}`);
          await refresh();
        } catch (error) {
          toast(error.detail || error.title);
        }
      } }, "Delete");
      if (lib.scan_job_id && !lib.last_scan_finished) watch(lib, scanCell);
      const summary = lib.last_scan ? Object.entries(lib.last_scan).filter(([, v]) => typeof v === "number").slice(0, 3).map(([k, v]) => `${v} ${k.replace(/_/g, " ")}`).join(", ") : "";
      return [h("a", { href: `#/library/${lib.id}` }, lib.name), lib.kind === "tv" ? "Series" : "Films", (lib.roots || []).join(", "), h("div", null, scanCell, summary ? h("span", { class: "muted small" }, summary) : null), h("div", { class: "row-actions" }, scan, remove)];
    });
    replace(list, table("Libraries", ["Name", "Kind", "Folders", "Last scan", ""], rows, "No libraries yet: add one below."));
  }
  replace(root, h("div", { class: "page admin" }, h("h1", null, "Libraries"), list, form));
  await refresh();
  if (first) name.focus();
  return () => {
    for (const stop of watchers.values()) stop();
  };
}

// -- users -------------------------------------------------------------------------------------

export async function usersPage(root) {
  setTitle("Users");
  const list = h("div", null, loading());
  const username = h("input", { name: "username", required: true, autocapitalize: "none" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = h("select", { name: "role" }, h("option", { value: "user" }, "User"), h("option", { value: "admin" }, "Administrator"));
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const libraries = (await get("/api/v1/libraries")).items || [];

  const canGrant = await hasRoute("GET", "/api/v1/libraries/{library_id}/grants");

  async function grantMap() {
    const granted = new Map(); // user id -> Set of library ids
    if (!canGrant) return granted;
    await Promise.all(
      libraries.map(async (lib) => {
        const list = await get(`/api/v1/libraries/${lib.id}/grants`);
        for (const g of list.items || []) {
          if (!granted.has(g.user_id)) granted.set(g.user_id, new Set());
          granted.get(g.user_id).add(lib.id);
        }
      }),
    );
    return granted;
  }

  function grantsCell(user, granted) {
    if (user.role === "admin") return h("span", { class: "muted" }, "all (administrator)");
    if (!canGrant) return h("span", { class: "muted" }, "—");
    const mine = granted.get(user.id) || new Set();
    return h(
      "fieldset",
      { class: "grants" },
      h("legend", { class: "sr-only" }, `Libraries ${user.username} may see`),
      libraries.map((lib) => {
        const box = h("input", { type: "checkbox", checked: mine.has(lib.id), "aria-label": `${lib.name} for ${user.username}` });
        box.addEventListener("change", async () => {
          box.disabled = true;
          try {
            const url = `/api/v1/libraries/${lib.id}/grants/${user.id}`;
            if (box.checked) await put(url);
            else await del(url);
          } catch (error) {
            box.checked = !box.checked;
            toast(error.detail || error.title);
          } finally {
            box.disabled = false;
          }
        });
        return h("label", { class: "check" }, box, lib.name);
      }),
    );
  }

  async function refresh() {
    const [users, granted] = await Promise.all([get("/api/v1/users").then((d) => d.users || []), grantMap()]);
    const rows = users.map((user) => {
      const toggle = h("button", { type: "button", class: "button small", onclick: async () => {
        try {
          await patch(`/api/v1/users/${user.id}`, { disabled: !user.disabled });
          await refresh();
        } catch (error) {
          toast(error.detail || error.title);
        }
      } }, user.disabled ? "Enable" : "Disable");
      return [user.username, user.role === "admin" ? "Administrator" : "User", grantsCell(user, granted), user.disabled ? "disabled" : "active", ago(user.created_at), toggle];
    });
    replace(list, table("Users", ["Name", "Role", "Libraries", "State", "Created", ""], rows, "No users."));
  }
  const form = h(
    "form",
    {
      class: "card-form",
      "aria-labelledby": "add-user",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        try {
          await post("/api/v1/users", { username: username.value, password: password.value, role: role.value, must_change_password: true });
          form.reset();
          await refresh();
        } catch (error) {
          replace(errors, problemBox(error));
        }
      },
    },
    h("h2", { id: "add-user" }, "Add a user"),
    h("div", { class: "form-grid" }, field("User name", username), field("Initial password", password, "They choose their own at first sign-in."), field("Role", role)),
    errors,
    h("button", { class: "button primary", type: "submit" }, "Add user"),
  );
  replace(root, h("div", { class: "page admin" }, h("h1", null, "Users"), list, form));
  await refresh();
}

// -- account: my API keys and sessions ---------------------------------------------------------------

export async function accountPage(root) {
  setTitle("Account");
  const keys = h("div", null, loading());
  const sessions = h("div", null, loading());
  const name = h("input", { name: "key_name", required: true, placeholder: "Kodi in the living room" });
  const shown = h("div", { "aria-live": "polite" });
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });

  async function refresh() {
    const data = await get("/api/v1/auth/api-keys");
    replace(keys, table("API keys", ["Name", "Created", "Last used", ""], data.api_keys.map((k) => [k.name, ago(k.created_at), ago(k.last_used_at), h("button", { type: "button", class: "button small danger", onclick: async () => {
      await del(`/api/v1/auth/api-keys/${encodeURIComponent(k.id)}`);
      await refresh();
    } }, "Revoke")]), "No API keys."));
    const mine = await get("/api/v1/auth/sessions");
    replace(sessions, table("Sessions", ["Device", "Address", "Last seen", ""], mine.sessions.map((s) => [s.client || "unknown", s.ip || "", ago(s.last_seen_at), s.current ? h("span", { class: "chip small" }, "this one") : h("button", { type: "button", class: "button small", onclick: async () => {
      await del(`/api/v1/auth/sessions/${s.id}`);
      await refresh();
    } }, "End")]), "No sessions."));
  }
  const form = h(
    "form",
    {
      class: "inline-form",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        try {
          const created = await post("/api/v1/auth/api-keys", { name: name.value });
          form.reset();
          replace(shown, h("div", { class: "notice" }, h("p", null, "Copy this key now; it is shown only once:"), h("code", { class: "secret" }, created.key)));
          await refresh();
        } catch (error) {
          replace(errors, problemBox(error));
        }
      },
    },
    field("New key's name", name),
    h("button", { class: "button primary", type: "submit" }, "Create key"),
  );
  replace(root, h("div", { class: "page admin" }, h("h1", null, "Account"), h("section", null, h("h2", null, "API keys"), keys, form, errors, shown), h("section", null, h("h2", null, "Sessions"), sessions, h("p", null, h("a", { class: "button", href: "#/device" }, "Sign in a TV with its code")))));
  await refresh();
}

export { append };
