/** Sign-in: the admin key, typed or pasted once, becomes a session cookie. */
import { ApiRequestError } from "../client.js";
import { type AdminPage, h } from "../view.js";

export function signInPage(signIn: (key: string) => Promise<void>, problem: string | null): AdminPage {
  const input = h("input", {
    id: "admin-key",
    name: "key",
    type: "password",
    autocomplete: "current-password",
    required: "",
    spellcheck: "false",
  });
  const error = h("p", { class: "note note-error", role: "alert", hidden: "" });
  if (problem) {
    error.textContent = problem;
    error.hidden = false;
  }
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "panel sign-in" },
    h("h1", {}, "Sign in to the dashboard"),
    h(
      "p",
      { class: "intro" },
      "Use the sign-in link that ",
      h("code", {}, "npm start"),
      " prints, or paste the admin key (",
      h("code", {}, "ADMIN_API_KEY"),
      "; locally it is in ",
      h("code", {}, ".state/admin-key"),
      ").",
    ),
    h("label", { for: "admin-key" }, "Admin key"),
    input,
    submit,
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await signIn(input.value.trim());
    } catch (err) {
      error.textContent = err instanceof ApiRequestError ? err.message : "Could not sign in.";
      error.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  return {
    title: "Sign in",
    root: h("div", { class: "page admin-page sign-in-page" }, form),
    async mount() {
      input.focus();
    },
    unmount() {},
  };
}
