// Placeholder: the dynamics view is built on branch h-uigraph.
import { card, h } from "../dom.js";

export function render(root, ctx) {
  root.append(
    card("Dynamics", h("p", { class: "muted" }, "This view is not built yet.")),
  );
}
