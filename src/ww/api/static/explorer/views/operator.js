import { card, h } from "../dom.js";

export function render(root, ctx) {
  root.append(card("Operator", h("p", { class: "muted" }, "Loading…")));
}
