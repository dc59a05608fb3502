import { card, h } from "../dom.js";

export function render(root, ctx) {
  root.append(card("Sessions", h("p", { class: "muted" }, "Loading…")));
}
