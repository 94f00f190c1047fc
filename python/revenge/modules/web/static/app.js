// The shell: session, navigation, and a hash router (#/path?query) so the server
// serves one page at "/" and every view is a module here.

import { get, post, onUnauthenticated } from "./api.js";
import { h, replace, problemBox, loading, setTitle, toast } from "./dom.js";

export const session = { user: null };
const main = () => document.getElementById("main");

const routes = [
  ["/setup", () => import("./auth.js").then((m) => m.setupPage)],
  ["/signin", () => import("./auth.js").then((m) => m.signInPage)],
  ["/forgot-password", () => import("./mail.js").then((m) => m.forgotPage)],
  ["/reset-password/:token", () => import("./mail.js").then((m) => m.resetPage)],
  ["/invitation/:token", () => import("./mail.js").then((m) => m.invitationPage)],
  ["/", () => import("./browse.js").then((m) => m.homePage)],
  ["/library/:id", () => import("./browse.js").then((m) => m.libraryPage)],
  ["/item/:id", () => import("./browse.js").then((m) => m.itemPage)],
  ["/search", () => import("./browse.js").then((m) => m.searchPage)],
  ["/play/:id", () => import("./player.js").then((m) => m.playerPage)],
  ["/account", () => import("./admin.js").then((m) => m.accountPage)],
  ["/device", () => import("./device.js").then((m) => m.devicePage)],
  ["/admin/libraries", () => import("./admin.js").then((m) => m.librariesPage), true],
  ["/admin/users", () => import("./admin.js").then((m) => m.usersPage), true],
  ["/admin/runtime", () => import("./runtime.js").then((m) => m.runtimePage), true],
];
// The pages behind the links in e-mails are public too: their token is the credential.
const PUBLIC = new Set(["/setup", "/signin", "/forgot-password", "/reset-password/:token", "/invitation/:token"]);

export function currentLocation() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path: path || "/", params: new URLSearchParams(search), raw };
}

export function go(target, { replace: swap = false } = {}) {
  const hash = `#${target}`;
  if (swap || location.hash === hash) {
    history.replaceState(null, "", hash);
    render();
  } else {
    location.hash = hash; // hashchange renders
  }
}

function match(path) {
  for (const [pattern, loader, admin] of routes) {
    const names = [];
    const re = new RegExp(
      "^" + pattern.replace(/:(\w+)/g, (_, n) => (names.push(n), "([^/]+)")) + "$",
    );
    const found = path.match(re);
    if (found) {
      const args = {};
      names.forEach((n, i) => (args[n] = decodeURIComponent(found[i + 1])));
      return { loader, args, admin: Boolean(admin), pattern };
    }
  }
  return null;
}

let cleanup = null;
let generation = 0;

/** Views return an optional function called when the person leaves them. */
export async function render() {
  const mine = ++generation;
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.warn(error);
    }
    cleanup = null;
  }
  const { path, params, raw } = currentLocation();
  const found = match(path);
  const root = main();
  if (!found) {
    replace(root, problemBox({ title: "Page not found", detail: `Nothing lives at ${path}.` }));
    return;
  }
  if (!PUBLIC.has(found.pattern) && !session.user) {
    go(`/signin?next=${encodeURIComponent(raw)}`, { replace: true });
    return;
  }
  if (found.admin && session.user && session.user.role !== "admin") {
    replace(root, problemBox({ title: "Administrators only", detail: "This page is for administrators." }));
    return;
  }
  renderNav(path);
  replace(root, loading());
  try {
    const view = await found.loader();
    if (mine !== generation) return;
    const result = await view(root, { ...found.args, params });
    if (mine !== generation) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
  } catch (error) {
    if (mine !== generation) return;
    if (error && error.status === 401) return; // sign-in already under way
    console.warn(error);
    replace(root, problemBox(error, () => render()));
  }
}

export function renderNav(path) {
  const top = document.getElementById("top");
  const user = session.user;
  if (!user || PUBLIC.has(path)) {
    top.hidden = true;
    return;
  }
  top.hidden = false;
  const item = (href, label) =>
    h("li", null, h("a", { href: `#${href}`, "aria-current": path === href ? "page" : null }, label));
  const searchBox = h("input", {
    type: "search",
    name: "q",
    placeholder: "Search",
    "aria-label": "Search the library",
    autocomplete: "off",
  });
  replace(
    top,
    h(
      "nav",
      { class: "nav", "aria-label": "Main" },
      h("a", { class: "brand", href: "#/" }, h("span", { class: "logo", "aria-hidden": "true" }, "R"), "Revenge"),
      h(
        "ul",
        { class: "links" },
        item("/", "Home"),
        user.role === "admin" ? [item("/admin/libraries", "Libraries"), item("/admin/users", "Users"), item("/admin/runtime", "Runtime")] : null,
        item("/account", "Account"),
      ),
      h(
        "form",
        {
          class: "search",
          role: "search",
          onsubmit: (event) => {
            event.preventDefault();
            const q = searchBox.value.trim();
            if (q) go(`/search?q=${encodeURIComponent(q)}`);
          },
        },
        searchBox,
      ),
      h("button", { type: "button", class: "button ghost", onclick: signOut }, "Sign out"),
    ),
  );
}

export async function signOut() {
  try {
    await post("/api/v1/auth/logout");
  } catch (error) {
    if (error.status !== 401) toast(error.detail || error.title);
  }
  session.user = null;
  go("/signin", { replace: true });
}

onUnauthenticated(() => {
  // The session expired or was revoked: sign in again, then come back here.
  session.user = null;
  const { path, raw } = currentLocation();
  if (!PUBLIC.has(path)) {
    toast("Your session ended: sign in again.");
    go(`/signin?next=${encodeURIComponent(raw)}`, { replace: true });
  }
});

export function afterSignIn(user, next) {
  session.user = user;
  const target = next && next.startsWith("/") && !next.startsWith("/signin") && !next.startsWith("/setup") ? next : "/";
  go(target, { replace: true });
}

async function boot() {
  // The skip link must not change the hash: that is the router's.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    main().focus();
  });
  window.addEventListener("hashchange", render);
  try {
    const setup = await get("/api/v1/setup", { quiet401: true });
    if (setup.needed) {
      if (currentLocation().path !== "/setup") history.replaceState(null, "", "#/setup");
      return render();
    }
  } catch (error) {
    replace(main(), problemBox(error, () => location.reload()));
    return;
  }
  try {
    session.user = await get("/api/v1/me", { quiet401: true });
  } catch (error) {
    if (error.status !== 401) {
      replace(main(), problemBox(error, () => location.reload()));
      return;
    }
  }
  if (currentLocation().path === "/setup") history.replaceState(null, "", "#/");
  setTitle();
  render();
}

boot();
