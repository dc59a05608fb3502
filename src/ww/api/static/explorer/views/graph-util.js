// What the Graph and Dynamics views share: their stylesheets and vendored libraries, loaded
// once by URL (a <link> or a module import: nothing inline, as the explorer's CSP demands).

const BASE = new URL("..", import.meta.url); // the explorer's root, /ui/
const loaded = new Map();

/** Add <link rel="stylesheet" href="/ui/<path>"> once (with ``id`` if given); resolves when
 * it has loaded. */
export function stylesheet(path, id) {
  const href = new URL(path, BASE).href;
  if (!loaded.has(href)) {
    loaded.set(
      href,
      new Promise((resolve, reject) => {
        const link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = href;
        if (id) link.id = id;
        link.addEventListener("load", () => resolve(link));
        link.addEventListener("error", () => reject(new Error(`cannot load ${href}`)));
        document.head.append(link);
      }),
    );
  }
  return loaded.get(href);
}

// Cytoscape adds an inline <style> (its containers' position: relative) unless an element
// with this id exists; the CSP refuses inline styles, so graph.css carries that rule and its
// <link> takes the id.
const CYTOSCAPE_STYLESHEET_ID = "__________cytoscape_stylesheet";

/** graph.css, the Graph and Dynamics views' stylesheet. */
export function viewStyles() {
  return stylesheet("graph.css", CYTOSCAPE_STYLESHEET_ID);
}

/** Cytoscape.js (vendor/cytoscape, its ES module build), after the rule it needs. */
export async function cytoscape() {
  const [mod] = await Promise.all([
    import(new URL("vendor/cytoscape/cytoscape.esm.min.js", BASE).href),
    viewStyles(),
  ]);
  return mod.default;
}

/** uPlot (vendor/uplot, its ES module build) with its stylesheet. */
export async function uPlot() {
  const [mod] = await Promise.all([
    import(new URL("vendor/uplot/uPlot.esm.js", BASE).href),
    stylesheet("vendor/uplot/uPlot.min.css"),
  ]);
  return mod.default;
}

/** Activation in [0, 1] as a colour from pale blue-grey (0) through amber to red (1). */
export function heat(a) {
  const x = Math.max(0, Math.min(1, a));
  const stops = [
    [0, [207, 216, 227]],
    [0.5, [240, 173, 78]],
    [1, [201, 42, 42]],
  ];
  const i = x <= 0.5 ? 0 : 1;
  const [x0, c0] = stops[i];
  const [x1, c1] = stops[i + 1];
  const t = (x - x0) / (x1 - x0);
  const rgb = c0.map((v, k) => Math.round(v + (c1[k] - v) * t));
  return `rgb(${rgb.join(", ")})`;
}

/** Short form of an id for labels. */
export function shortId(id) {
  return String(id).slice(0, 8);
}
