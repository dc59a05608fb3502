import { card, h } from "../dom.js";

export function render(root, ctx) {
  root.append(card("Timeline", h("p", { class: "muted" }, "Loading…")));
}
