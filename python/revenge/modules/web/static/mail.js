// The pages behind the links in Revenge's e-mails (docs/email.md): asking for a password
// reset, choosing the new password from the mailed link (#/reset-password/<token>), and
// accepting an invitation (#/invitation/<token>). All public: the token is the credential.
// The token lives in the fragment, so it never reaches a server log; it is sent only in
// the JSON body of the one POST that spends it.

import { post } from "./api.js";
import { h, replace, problemBox, setTitle } from "./dom.js";
import { afterSignIn, go } from "./app.js";
import { busy, card, field } from "./auth.js";

const MIN_PASSWORD = 8;

const page = (title, subtitle, form) => h("div", { class: "auth" }, card(title, subtitle, form));

function passwordPair() {
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: MIN_PASSWORD });
  const again = h("input", { name: "password_again", type: "password", autocomplete: "new-password", required: true, minlength: MIN_PASSWORD });
  return { password, again };
}

/** A form whose two passwords must match before ``send()`` runs; ``failed(error)`` gives
 * what to show (beside the API's problem) when it throws. */
function passwordForm({ password, again }, send, failed, ...children) {
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        if (password.value !== again.value) {
          again.focus();
          replace(errors, problemBox({ title: "The passwords differ", detail: "Type the same password twice." }));
          return;
        }
        busy(form, true);
        try {
          await send();
        } catch (error) {
          busy(form, false);
          replace(errors, problemBox(error), failed(error));
        }
      },
    },
    ...children,
    errors,
  );
  return form;
}

const backToSignIn = () => h("p", { class: "muted small" }, h("a", { href: "#/signin" }, "Back to sign-in"));

/** #/forgot-password: the same answer whatever the address (the server's, too). */
export async function forgotPage(root) {
  setTitle("Forgot password");
  const address = h("input", { name: "email", type: "email", autocomplete: "email", required: true, autocapitalize: "none", spellcheck: "false" });
  const errors = h("div", { class: "form-errors", "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(errors);
        busy(form, true);
        try {
          await post("/api/v1/auth/password-reset", { email: address.value.trim() }, { quiet401: true });
          replace(
            form,
            h(
              "p",
              { class: "notice", role: "status" },
              "If an account has this address, a mail is on its way with a link to choose a new password (valid 30 minutes).",
            ),
            backToSignIn(),
          );
        } catch (error) {
          busy(form, false);
          replace(errors, problemBox(error));
          address.focus();
        }
      },
    },
    field("E-mail address", address, "The address your account has on this server."),
    errors,
    h("button", { class: "button primary wide", type: "submit" }, "Send the reset link"),
    backToSignIn(),
  );
  replace(root, page("Forgot password?", "We send a link to choose a new one.", form));
  address.focus();
}

/** #/reset-password/<token>: the link in the reset mail. */
export async function resetPage(root, { token }) {
  setTitle("New password");
  const pair = passwordPair();
  const form = passwordForm(
    pair,
    async () => {
      await post("/api/v1/auth/password-reset/confirm", { token, password: pair.password.value }, { quiet401: true });
      go("/signin?reset=1", { replace: true });
    },
    // An expired or used link says so (the API's detail); offer the way to a new one.
    (error) =>
      error.status === 404 || error.status === 410
        ? h("p", { class: "small" }, h("a", { href: "#/forgot-password" }, "Ask for a new reset link"))
        : null,
    field("New password", pair.password, `At least ${MIN_PASSWORD} characters.`),
    field("New password, again", pair.again),
  );
  form.append(h("button", { class: "button primary wide", type: "submit" }, "Set the new password"), backToSignIn());
  replace(root, page("Choose a new password", "Every device signed in to this account is signed out.", form));
  pair.password.focus();
}

/** #/invitation/<token>: the link in the invitation mail; accepting signs the person in. */
export async function invitationPage(root, { token }) {
  setTitle("Invitation");
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const pair = passwordPair();
  const form = passwordForm(
    pair,
    async () => {
      const body = { token, username: username.value.trim(), password: pair.password.value };
      const result = await post("/api/v1/invitations/accept", body, { quiet401: true });
      afterSignIn(result.user, "/");
    },
    (error) => {
      if (error.code === "username_taken" || error.code === "validation_failed") username.focus();
      return null;
    },
    field("User name", username),
    field("Password", pair.password, `At least ${MIN_PASSWORD} characters.`),
    field("Password, again", pair.again),
  );
  form.append(h("button", { class: "button primary wide", type: "submit" }, "Accept the invitation"));
  replace(root, page("You are invited", "Choose your user name and password for this Revenge server.", form));
  username.focus();
}
