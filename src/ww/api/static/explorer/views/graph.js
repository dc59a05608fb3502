// Graph: the session's entities and relations (GET /api/v1/graph) drawn with Cytoscape.js;
// pan, zoom, click a node to open it (its fields, relations and bi-temporal history from
// GET /api/v1/entities/{id}/history), and spreading activation from it
// (POST /api/v1/entities/spread-activation, a read) shown as colour.
//
// Params: #/graph?node=<entity id> opens that entity; &spread=1 also spreads from it.

import { card, errorBox, fmtTime, h, num, replace, table } from "../dom.js";
import { cytoscape, heat, shortId, viewStyles } from "./graph-util.js";

// One colour per entity type (the palette of style.css, as literals: Cytoscape draws on a
// canvas and cannot read CSS variables).
const PALETTE = ["#2f5d8a", "#e08a2e", "#3a9a6b", "#b5485d", "#7b61b8", "#8c8c3e", "#3aa0b5", "#a0522d"];
const TYPES = ["PERSON", "PROJECT", "TOOL", "TECHNIQUE", "CONCEPT", "FACT", "EVENT", "ORGANIZATION", "LOCATION", "OTHER"];
const NODE_LIMIT = 300;

function typeColour(type) {
  const i = TYPES.indexOf(type);
  return PALETTE[(i < 0 ? TYPES.length - 1 : i) % PALETTE.length];
}

const STYLE = [
  {
    selector: "node",
    style: {
      "background-color": "data(colour)",
      label: "data(label)",
      "font-size": 11,
      color: "#1d2733",
      "text-valign": "bottom",
      "text-margin-y": 4,
      "text-wrap": "wrap",
      "text-max-width": 140,
      width: 30,
      height: 30,
      "border-width": 2,
      "border-color": "#ffffff",
    },
  },
  { selector: "node[heat]", style: { "background-color": "data(heat)" } },
  { selector: "node.unreached", style: { opacity: 0.3 } },
  { selector: "node.seed", style: { "border-width": 4, "border-color": "#1d2733" } },
  { selector: "node:selected", style: { "border-width": 4, "border-color": "#2f5d8a" } },
  {
    selector: "edge",
    style: {
      width: "mapData(weight, 0, 1, 1, 7)",
      "line-color": "#b8c2cc",
      "target-arrow-color": "#b8c2cc",
      "target-arrow-shape": "triangle",
      "curve-style": "bezier",
      label: "data(label)",
      "font-size": 9,
      color: "#66717f",
      "text-rotation": "autorotate",
      "text-background-color": "#fbfcfd",
      "text-background-opacity": 1,
    },
  },
];

function elements(graph) {
  const nodes = graph.nodes.map((e) => ({
    group: "nodes",
    data: { id: e.id, label: e.name, name: e.name, type: e.entity_type, colour: typeColour(e.entity_type) },
  }));
  const edges = graph.edges.map((r) => ({
    group: "edges",
    data: {
      id: r.id,
      source: r.source_id,
      target: r.target_id,
      label: `${r.relation_type} ${num(r.weight, 2)}`,
      weight: r.weight,
    },
  }));
  return [...nodes, ...edges];
}

function numberInput(label, attrs) {
  const input = h("input", { type: "number", ...attrs });
  return [h("label", {}, label, input), input];
}

/** Field by field, which fields of a version differ from the version before it. */
function changedFields(prev, cur) {
  if (!prev) return new Set();
  return new Set(["name", "entity_type", "summary", "details"].filter((f) => prev[f] !== cur[f]));
}

function historyTable(versions, selectedId) {
  const rows = versions.map((v, i) => {
    const changed = changedFields(versions[i - 1], v);
    const cell = (field, text) => h("td", { class: changed.has(field) ? "changed" : null }, text);
    return h(
      "tr",
      { class: v.id === selectedId ? "selected" : null, "data-version": v.version },
      h("td", { class: "num" }, `v${v.version}`),
      cell("name", v.name),
      cell("entity_type", v.entity_type),
      cell("summary", v.summary || ""),
      h("td", {}, fmtTime(v.valid_from)),
      h("td", {}, v.valid_to ? fmtTime(v.valid_to) : h("span", { class: "pill good" }, "current")),
      h("td", { class: "muted" }, fmtTime(v.created_at)),
    );
  });
  return table(["", "name", "type", "summary", "valid from", "valid to", "recorded"], rows, {
    class: "grid history",
  });
}

export async function render(root, ctx) {
  await viewStyles();
  const canvas = h("div", { class: "graph-canvas", role: "img", "aria-label": "Entity graph" });
  const status = h("p", { class: "muted graph-status" }, "Loading the graph…");
  const details = h("div", { class: "graph-details" }, h("p", { class: "muted" }, "Click a node to open it."));
  const [depthLabel, depth] = numberInput("depth", { min: 1, max: 5, step: 1, value: 2, name: "depth" });
  const [decayLabel, decay] = numberInput("decay per hop", { min: 0.05, max: 1, step: 0.05, value: 0.8, name: "decay" });
  const [thresholdLabel, threshold] = numberInput("threshold", { min: 0, max: 1, step: 0.05, value: 0.05, name: "threshold" });
  const spreadButton = h("button", { type: "button", class: "primary", disabled: true }, "Spread activation");
  const clearButton = h("button", { type: "button", disabled: true }, "Clear");
  const legend = h(
    "div",
    { class: "legend heat-legend" },
    h("span", {}, "activation 0"),
    h("span", { class: "heat-scale" }),
    h("span", {}, "1"),
  );
  const listBody = h("tbody");
  const list = h(
    "table",
    { class: "grid entity-list" },
    h("thead", {}, h("tr", {}, ["entity", "type", "activation"].map((x) => h("th", {}, x)))),
    listBody,
  );
  root.append(
    h(
      "div",
      { class: "columns" },
      card(
        "Graph",
        h("div", { class: "toolbar" }, depthLabel, decayLabel, thresholdLabel, spreadButton, clearButton),
        canvas,
        h("div", { class: "row graph-foot" }, legend, status),
      ),
      card("Entity", details),
    ),
    card("Entities", h("p", { class: "muted" }, "The same graph as a list (click a row to open)."), list),
  );

  let graph;
  try {
    graph = await ctx.api("GET", `/api/v1/graph?limit=${NODE_LIMIT}`);
  } catch (err) {
    replace(status, errorBox(err));
    return undefined;
  }
  const byId = new Map(graph.nodes.map((e) => [e.id, e]));
  const Cytoscape = await cytoscape();
  const cy = Cytoscape({
    container: canvas,
    elements: elements(graph),
    style: STYLE,
    layout: { name: "cose", animate: false, nodeDimensionsIncludeLabels: true, randomize: true },
    minZoom: 0.2,
    maxZoom: 4,
    selectionType: "single",
  });
  // For tests and the curious: the Cytoscape instance behind the canvas.
  canvas.wwCy = cy;
  canvas.dataset.nodes = String(cy.nodes().length);
  canvas.dataset.edges = String(cy.edges().length);
  replace(
    status,
    graph.nodes.length === 0
      ? "No entities in this session yet."
      : `${graph.nodes.length} entities, ${graph.edges.length} relations${graph.truncated ? " (the newest only: the session holds more)" : ""}. Drag to pan, scroll to zoom.`,
  );

  let selected = null;
  let activation = new Map();

  function renderList() {
    const rows = [...graph.nodes]
      .sort((a, b) => (activation.get(b.id) ?? -1) - (activation.get(a.id) ?? -1) || a.name.localeCompare(b.name))
      .map((e) => {
        const a = activation.get(e.id);
        return h(
          "tr",
          {
            class: `selectable${e.id === selected ? " selected" : ""}`,
            "data-entity": e.id,
            onclick: () => open(e.id),
          },
          h("td", {}, e.name),
          h("td", {}, h("span", { class: "pill" }, e.entity_type)),
          h(
            "td",
            { class: "num" },
            a === undefined ? "–" : [h("i", { class: "heat-dot", style: { background: heat(a) } }), num(a, 3)],
          ),
        );
      });
    replace(listBody, rows);
  }

  function clearActivation() {
    activation = new Map();
    cy.batch(() => {
      cy.nodes().removeClass("unreached seed").removeData("heat");
      cy.nodes().forEach((n) => n.data("label", n.data("name")));
    });
    delete canvas.dataset.activated;
    clearButton.disabled = true;
    renderList();
  }

  async function spread() {
    if (!selected) return;
    spreadButton.disabled = true;
    try {
      const result = await ctx.api("POST", "/api/v1/entities/spread-activation", {
        seed_id: selected,
        depth: Number(depth.value),
        decay: Number(decay.value),
        threshold: Number(threshold.value),
        limit: 500,
      });
      activation = new Map([[selected, 1], ...result.activated.map((a) => [a.entity_id, a.activation])]);
      cy.batch(() => {
        cy.nodes().forEach((n) => {
          const a = activation.get(n.id());
          n.removeClass("seed unreached");
          if (a === undefined) {
            n.removeData("heat");
            n.addClass("unreached");
            n.data("label", n.data("name"));
          } else {
            n.data("heat", heat(a));
            n.data("label", `${n.data("name")}\n${num(a, 2)}`);
          }
        });
        cy.$id(selected).addClass("seed");
      });
      canvas.dataset.activated = String(activation.size);
      clearButton.disabled = false;
      renderList();
    } catch (err) {
      replace(status, errorBox(err));
    } finally {
      spreadButton.disabled = false;
    }
  }

  async function open(id) {
    selected = id;
    spreadButton.disabled = !byId.has(id);
    cy.nodes().unselect();
    if (byId.has(id)) cy.$id(id).select();
    history.replaceState(null, "", `#/graph?node=${encodeURIComponent(id)}`);
    renderList();
    replace(details, h("p", { class: "muted" }, "Loading…"));
    try {
      const [entity, hist] = await Promise.all([
        ctx.api("GET", `/api/v1/entities/${id}`),
        ctx.api("GET", `/api/v1/entities/${id}/history`),
      ]);
      if (selected !== id) return;
      replace(details, entityDetails(entity, hist, ctx, graph, byId, { spread, open }));
    } catch (err) {
      if (selected === id) replace(details, errorBox(err));
    }
  }

  cy.on("tap", "node", (evt) => open(evt.target.id()));
  spreadButton.addEventListener("click", spread);
  clearButton.addEventListener("click", clearActivation);
  renderList();

  const start = ctx.params.get("node");
  if (start) {
    await open(start);
    if (ctx.params.get("spread") === "1" && byId.has(start)) await spread();
  }
  return () => cy.destroy();
}

function relationRows(entity, graph, byId, open) {
  const rows = graph.edges
    .filter((r) => r.source_id === entity.id || r.target_id === entity.id)
    .map((r) => {
      const out = r.source_id === entity.id;
      const other = byId.get(out ? r.target_id : r.source_id);
      return h(
        "tr",
        { class: "selectable", onclick: () => other && open(other.id) },
        h("td", {}, out ? "→" : "←"),
        h("td", {}, r.relation_type),
        h("td", {}, other ? other.name : shortId(out ? r.target_id : r.source_id)),
        h("td", { class: "num" }, num(r.weight, 2)),
      );
    });
  return rows.length ? table(["", "relation", "entity", "weight"], rows) : h("p", { class: "muted" }, "No relations.");
}

function entityDetails(entity, hist, ctx, graph, byId, actions) {
  const current = !entity.valid_to;
  return h(
    "div",
    { class: "stack", "data-entity": entity.id },
    h("h1", { class: "entity-name" }, entity.name),
    h(
      "div",
      {},
      h("span", { class: "pill" }, entity.entity_type),
      h("span", { class: current ? "pill good" : "pill warn" }, current ? "current" : "closed"),
      h("span", { class: "pill" }, `version ${entity.version} of ${hist.versions.length}`),
    ),
    entity.summary ? h("p", {}, entity.summary) : null,
    entity.details ? h("p", { class: "muted" }, entity.details) : null,
    h(
      "dl",
      { class: "kv" },
      h("dt", {}, "id"),
      h("dd", { class: "mono" }, entity.id),
      h("dt", {}, "valid"),
      h("dd", {}, `${fmtTime(entity.valid_from)} → ${entity.valid_to ? fmtTime(entity.valid_to) : "now"}`),
      h("dt", {}, "recorded"),
      h("dd", {}, fmtTime(entity.created_at)),
      h("dt", {}, "source"),
      h("dd", {}, entity.source || "–"),
      h("dt", {}, "FSRS stability"),
      h("dd", {}, `${num(entity.fsrs.stability, 2)} d (${entity.fsrs.reps} reviews)`),
      h("dt", {}, "accesses"),
      h("dd", {}, `${entity.access_count}${entity.last_accessed ? `, last ${fmtTime(entity.last_accessed)}` : ""}`),
    ),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", class: "primary", disabled: !byId.has(entity.id), onclick: actions.spread }, "Spread activation from here"),
      h("button", { type: "button", onclick: () => ctx.navigate(`#/dynamics?memory=${entity.id}`) }, "Retrievability curve"),
    ),
    h("h3", {}, "Relations"),
    relationRows(entity, graph, byId, actions.open),
    h("h3", {}, "History"),
    h("p", { class: "muted" }, "Every version of this entity: when each was true (valid from/to) and when it was recorded; changed fields are marked."),
    h("div", { class: "table-scroll" }, historyTable(hist.versions, entity.id)),
  );
}
