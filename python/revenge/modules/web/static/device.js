// Sign in a TV: the TV shows a short code (ABCD-EFGH, from POST /api/v1/auth/device); the
// person, signed in here, types it and approves, and the TV is signed in as them.

import { post } from "./api.js";
import { h, replace, problemBox, setTitle } from "./dom.js";
import { session } from "./app.js";

const CODE = /^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$/;

export async function devicePage(root, { params }) {
  setTitle("Sign in a TV");
  const code = h("input", {
    id: "f-user_code",
    name: "user_code",
    required: true,
    autocomplete: "off",
    autocapitalize: "characters",
    spellcheck: "false",
    inputmode: "text",
    maxlength: 16,
    placeholder: "ABCD-EFGH",
    value: (params.get("code") || "").slice(0, 16),
    "aria-describedby": "f-user_code-hint",
  });
  const outcome = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(outcome);
        const typed = code.value.trim().toUpperCase();
        if (!CODE.test(typed)) {
          replace(outcome, problemBox({ title: "That is not a TV code", detail: "A code has eight letters and digits, like ABCD-EFGH." }));
          code.focus();
          return;
        }
        for (const el of form.querySelectorAll("button, input")) el.disabled = true;
        try {
          const approved = await post("/api/v1/auth/device/approve", { user_code: typed });
          form.reset();
          replace(
            outcome,
            h(
              "div",
              { class: "notice done", role: "status" },
              h("strong", null, "The TV is signed in."),
              h("p", null, `It is signed in as ${session.user ? session.user.username : "you"}; it described itself as \u201c${approved.client || "unknown"}\u201d.`),
              h("p", { class: "muted small" }, "Not yours? End its session under Account \u2192 Sessions."),
            ),
          );
        } catch (error) {
          replace(outcome, problemBox(error));
        } finally {
          for (const el of form.querySelectorAll("button, input")) el.disabled = false;
        }
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-user_code" }, "Code shown on the TV"),
      code,
      h("p", { class: "hint", id: "f-user_code-hint" }, "The TV will be signed in as you, with your libraries. Type only a code shown on a screen in front of you."),
    ),
    outcome,
    h("button", { class: "button primary", type: "submit" }, "Approve"),
  );
  replace(root, h("div", { class: "page device narrow" }, h("h1", null, "Sign in a TV"), form, h("p", null, h("a", { href: "#/account" }, "Your sessions and API keys"))));
  code.focus();
}
