import { get, post } from "./api.js";
import { h, replace, problemBox, setTitle } from "./dom.js";
import { afterSignIn, go, session } from "./app.js";

export function field(label, input, hint) {
  const id = input.id || `f-${input.name}`;
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

export function card(title, subtitle, ...children) {
  return h(
    "section",
    { class: "auth-card", "aria-labelledby": "auth-title" },
    h("div", { class: "brand big" }, h("span", { class: "logo", "aria-hidden": "true" }, "R"), "Revenge"),
    h("h1", { id: "auth-title" }, title),
    subtitle ? h("p", { class: "muted" }, subtitle) : null,
    ...children,
  );
}

export function busy(form, on) {
  for (const el of form.querySelectorAll("button, input")) el.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

export async function signInPage(root, { params }) {
  setTitle("Sign in");
  const next = params.get("next") || "/";
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const newPassword = h("input", { name: "new_password", type: "password", autocomplete: "new-password", minlength: 8 });
  const newField = field("New password", newPassword, "An administrator reset your password: choose a new one.");
  newField.hidden = true;
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "stack",
      novalidate: false,
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        busy(form, true);
        try {
          const body = { username: username.value, password: password.value };
          if (!newField.hidden) body.new_password = newPassword.value;
          const result = await post("/api/v1/auth/login", body, { quiet401: true });
          afterSignIn(result.user, next);
        } catch (error) {
          busy(form, false);
          if (error.code === "password_change_required") {
            newField.hidden = false;
            newPassword.required = true;
            newPassword.focus();
          } else {
            password.select();
          }
          replace(errors, problemBox(error));
        }
      },
    },
    field("User name", username),
    field("Password", password),
    newField,
    errors,
    h("button", { class: "button primary wide", type: "submit" }, "Sign in"),
    h("p", { class: "small" }, h("a", { href: "#/forgot-password" }, "Forgot password?")),
  );
  const others = h("div", { class: "stack", hidden: true });
  if (params.get("reset")) form.prepend(h("p", { class: "notice", role: "status" }, "Your password is changed: sign in with the new one."));
  replace(root, h("div", { class: "auth" }, card("Sign in", null, form, others)));
  if (session.user) afterSignIn(session.user, next);
  username.focus();
  singleSignOn(others, next);
}

// "Sign in with <provider>" for each configured OpenID provider: a plain link, since the
// sign-in is a round of redirects through the provider that ends back here, signed in.
async function singleSignOn(box, next) {
  let providers = [];
  try {
    ({ providers } = await get("/api/v1/oidc/providers", { quiet401: true }));
  } catch {
    return; // the password form works on its own
  }
  if (!providers.length) return;
  const back = `/#${next.startsWith("/") ? next : "/"}`;
  replace(
    box,
    h("p", { class: "muted", style: { "text-align": "center" } }, "or"),
    ...providers.map((p) =>
      h(
        "a",
        { class: "button wide", href: `${p.login_url}?return_to=${encodeURIComponent(back)}` },
        `Sign in with ${p.display_name}`,
      ),
    ),
  );
  box.hidden = false;
}

export async function setupPage(root) {
  setTitle("Welcome");
  const state = await get("/api/v1/setup", { quiet401: true });
  if (!state.needed) {
    go(session.user ? "/" : "/signin", { replace: true });
    return;
  }
  const username = h("input", { name: "username", autocomplete: "username", required: true, value: "admin", autocapitalize: "none" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const again = h("input", { name: "password_again", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const code = h("input", { name: "code", autocomplete: "one-time-code", required: !state.local, placeholder: "XXXX-XXXX-XXXX-XXXX", autocapitalize: "characters" });
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        if (password.value !== again.value) {
          replace(errors, problemBox({ title: "The passwords differ", detail: "Type the same password twice." }));
          again.focus();
          return;
        }
        busy(form, true);
        try {
          const body = { username: username.value, password: password.value };
          if (code.value.trim()) body.code = code.value.trim();
          const result = await post("/api/v1/setup", body, { quiet401: true });
          session.user = result.user;
          go("/admin/libraries?first=1", { replace: true });
        } catch (error) {
          busy(form, false);
          replace(errors, problemBox(error));
        }
      },
    },
    field("Administrator name", username),
    field("Password", password, "At least 8 characters."),
    field("Password, again", again),
    state.local
      ? h("p", { class: "hint" }, "You are on the server's own machine: no setup code is needed.")
      : field("Setup code", code, "Printed once in the server's log when it started (\u201cone-time setup code\u201d)."),
    errors,
    h("button", { class: "button primary wide", type: "submit" }, "Create administrator"),
  );
  replace(
    root,
    h(
      "div",
      { class: "auth" },
      card(
        "Welcome to Revenge",
        "This server has no users yet. Create its first administrator; next you will add a library.",
        h("ol", { class: "steps", "aria-label": "Setup steps" }, h("li", { class: "current", "aria-current": "step" }, "Administrator"), h("li", null, "First library"), h("li", null, "Watch")),
        form,
      ),
    ),
  );
  username.focus();
  username.select();
}
