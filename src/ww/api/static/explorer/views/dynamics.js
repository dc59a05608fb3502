// Dynamics: how memories fade and merge.
// - A memory's FSRS retrievability curve with its retrievals and "now"
//   (GET /api/v1/dynamics/memories/{id}/retrievability: the engine computes the points, so
//   the page never re-implements the formula), drawn with uPlot.
// - Histograms of the session's learned values and FSRS stabilities
//   (GET /api/v1/dynamics/distribution), drawn as SVG.
// - What the last consolidation merged (GET /api/v1/dynamics/consolidation).
//
// Params: #/dynamics?memory=<episode or entity id> picks the memory of the curve.

import { card, errorBox, fmtTime, h, num, replace, s, table } from "../dom.js";
import { shortId, uPlot, viewStyles } from "./graph-util.js";

const HORIZONS = [7, 30, 90, 365];
const BINS = 10;
const PREVIEWS = 5; // member episodes quoted per merged entity
const CURVE_HEIGHT = 250;
const MIN_CURVE_WIDTH = 240;

/** The width the curve should take: its column's, so it follows the window. */
function curveWidth(chart) {
  return Math.max(MIN_CURVE_WIDTH, Math.floor(chart.clientWidth || 700));
}

function excerpt(text, n = 90) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// -- the curve --------------------------------------------------------------------------

function nowLine(nowSec) {
  return (u) => {
    const x = u.valToPos(nowSec, "x", true);
    const { ctx, bbox } = u;
    ctx.save();
    ctx.strokeStyle = "#b5485d";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillStyle = "#b5485d";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("now", x + 5, bbox.top + 26);
    ctx.restore();
  };
}

/** uPlot's aligned data: the curve's samples and the retrievals (drawn at 1) on one axis. */
function curveData(curve) {
  const seconds = (iso) => new Date(iso).getTime() / 1000;
  const marks = new Map(curve.accesses.map((t) => [seconds(t), 1]));
  marks.set(seconds(curve.fsrs.last_review), 1);
  const rows = new Map(curve.points.map((p) => [seconds(p.at), [p.retrievability, null]]));
  for (const x of marks.keys()) {
    const row = rows.get(x) || [null, null];
    row[1] = 1;
    rows.set(x, row);
  }
  const xs = [...rows.keys()].sort((a, b) => a - b);
  return [xs, xs.map((x) => rows.get(x)[0]), xs.map((x) => rows.get(x)[1])];
}

async function drawCurve(chart, facts, ctx, memoryId, days) {
  replace(chart, h("p", { class: "muted" }, "Loading…"));
  replace(facts);
  let curve;
  try {
    curve = await ctx.api("GET", `/api/v1/dynamics/memories/${memoryId}/retrievability?days=${days}&points=160`);
  } catch (err) {
    replace(chart, errorBox(err));
    return null;
  }
  const UPlot = await uPlot();
  replace(chart);
  const plot = new UPlot(
    {
      width: curveWidth(chart),
      height: CURVE_HEIGHT,
      scales: { y: { range: [0, 1.05] } },
      axes: [{}, { label: "retrievability", values: (u, ticks) => ticks.map((t) => num(t, 2)) }],
      series: [
        {},
        { label: "retrievability", stroke: "#2f5d8a", width: 2, fill: "rgba(47, 93, 138, 0.08)", spanGaps: true },
        { label: "reviews and retrievals", stroke: "#e08a2e", paths: () => null, points: { show: true, size: 9, fill: "#e08a2e" } },
      ],
      hooks: { draw: [nowLine(new Date(curve.now).getTime() / 1000)] },
    },
    curveData(curve),
    chart,
  );
  chart.dataset.width = String(plot.width);
  chart.dataset.points = String(curve.points.length);
  chart.dataset.kind = curve.kind;
  const f = curve.fsrs;
  replace(
    facts,
    h(
      "dl",
      { class: "kv" },
      h("dt", {}, "retrievability now"),
      h("dd", {}, h("b", {}, num(curve.retrievability, 3))),
      h("dt", {}, "stability"),
      h("dd", {}, `${num(f.stability, 2)} d`),
      h("dt", {}, "difficulty"),
      h("dd", {}, num(f.difficulty, 2)),
      h("dt", {}, "reviews / lapses"),
      h("dd", {}, `${f.reps} / ${f.lapses}`),
      h("dt", {}, "last review"),
      h("dd", {}, fmtTime(f.last_review)),
      h("dt", {}, "recorded retrievals"),
      h("dd", {}, String(curve.accesses.length)),
      h("dt", {}, curve.kind),
      h("dd", { class: "mono" }, curve.memory_id),
    ),
    h("p", { class: "muted" }, "R(t), t days after the last review, S the stability:"),
    h("code", {}, curve.formula),
  );
  return plot;
}

// -- histograms -------------------------------------------------------------------------

function histogram(title, hist, colour, label, testId) {
  const W = 320;
  const H = 170;
  const pad = { l: 34, r: 8, t: 8, b: 34 };
  const n = hist.counts.length;
  const max = Math.max(1, ...hist.counts);
  const bw = n ? (W - pad.l - pad.r) / n : 0;
  const y = (c) => H - pad.b - (c / max) * (H - pad.t - pad.b);
  const bars = hist.counts.map((c, i) =>
    s(
      "rect",
      {
        class: `bin ${colour}`,
        x: pad.l + i * bw + 1,
        y: y(c),
        width: Math.max(1, bw - 2),
        height: H - pad.b - y(c),
        "data-count": c,
      },
      s("title", {}, `${label(hist.edges[i])} – ${label(hist.edges[i + 1])}: ${c}`),
    ),
  );
  const ticks = hist.edges
    .map((e, i) => ({ e, i }))
    .filter(({ i }) => n <= 5 || i % 2 === 0 || i === n)
    .map(({ e, i }) =>
      s("text", { x: pad.l + i * bw, y: H - pad.b + 14, "text-anchor": "middle" }, label(e)),
    );
  return h(
    "figure",
    { class: "stack" },
    h("h3", {}, title),
    n === 0
      ? h("p", { class: "muted" }, "No live episodes.")
      : s(
          "svg",
          { class: "hist", viewBox: `0 0 ${W} ${H}`, "data-hist": testId, role: "img", "aria-label": title },
          s("line", { class: "axis", x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }),
          s("text", { x: pad.l - 6, y: pad.t + 8, "text-anchor": "end" }, String(max)),
          s("text", { x: pad.l - 6, y: H - pad.b, "text-anchor": "end" }, "0"),
          bars,
          ticks,
          s("text", { x: (W + pad.l) / 2, y: H - 4, "text-anchor": "middle" }, testId === "value" ? "learned value" : "stability (days, log scale)"),
        ),
  );
}

async function drawDistribution(box, ctx) {
  try {
    const d = await ctx.api("GET", `/api/v1/dynamics/distribution?bins=${BINS}`);
    replace(
      box,
      h("p", { class: "muted" }, `${d.episodes} live episodes${d.truncated ? " (the first ones read only)" : ""}.`),
      h(
        "div",
        { class: "histograms" },
        histogram("Learned value", d.value, "fill-3", (x) => num(x, 1), "value"),
        histogram("FSRS stability", d.stability, "fill-1", (x) => num(x, x < 10 ? 1 : 0), "stability"),
      ),
    );
  } catch (err) {
    replace(box, errorBox(err));
  }
}

// -- last consolidation -----------------------------------------------------------------

async function episodeTexts(ctx, ids) {
  const out = new Map();
  await Promise.all(
    ids.map(async (id) => {
      try {
        out.set(id, (await ctx.api("GET", `/api/v1/episodes/${id}`)).content);
      } catch {
        out.set(id, null);
      }
    }),
  );
  return out;
}

async function drawConsolidation(box, ctx) {
  let last;
  try {
    last = await ctx.api("GET", "/api/v1/dynamics/consolidation");
  } catch (err) {
    replace(box, errorBox(err));
    return;
  }
  if (!last.at) {
    replace(box, h("p", { class: "muted" }, "No consolidation has merged anything in this session yet."));
    return;
  }
  const wanted = [
    ...last.entities.flatMap((e) => e.members.slice(0, PREVIEWS)),
    ...last.duplicates.flatMap((d) => [d.duplicate_id, d.original_id]),
  ];
  const texts = await episodeTexts(ctx, [...new Set(wanted)]);
  // Each quote opens its episode in the Timeline view (archived duplicates with archived on).
  const quote = (id, archived = false) =>
    h(
      "a",
      { href: `#/timeline?id=${id}${archived ? "&archived=1" : ""}` },
      texts.get(id) ? excerpt(texts.get(id)) : shortId(id),
    );
  const entities = last.entities.map((e) =>
    h(
      "div",
      { class: "merged", "data-entity": e.entity_id },
      h("a", { class: "merged-entity", href: `#/graph?node=${e.entity_id}` }, e.name || shortId(e.entity_id)),
      h("span", { class: "muted" }, ` · ${e.members.length} episodes`),
      h(
        "ul",
        { class: "members" },
        e.members.slice(0, PREVIEWS).map((m) => h("li", {}, quote(m))),
        e.members.length > PREVIEWS ? h("li", {}, `and ${e.members.length - PREVIEWS} more`) : null,
      ),
    ),
  );
  const duplicates = last.duplicates.length
    ? table(
        ["archived duplicate", "kept original"],
        last.duplicates.map((d) => h("tr", { "data-duplicate": d.duplicate_id }, h("td", {}, quote(d.duplicate_id, true)), h("td", {}, quote(d.original_id)))),
        { class: "grid duplicates" },
      )
    : h("p", { class: "muted" }, "No near-duplicates.");
  replace(
    box,
    h("p", { class: "muted" }, `Run of ${fmtTime(last.at)}: ${plural(last.entities.length, "entity", "entities")} made or updated, ${plural(last.duplicates.length, "near-duplicate", "near-duplicates")} archived.`),
    h("h3", {}, "Entities"),
    last.entities.length ? h("div", { class: "merged-list" }, entities) : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Near-duplicates"),
    duplicates,
  );
}

// -- the view ---------------------------------------------------------------------------

export async function render(root, ctx) {
  await viewStyles();
  const picker = h("select", { name: "memory", "aria-label": "memory" });
  const horizon = h(
    "select",
    { name: "days", "aria-label": "days ahead" },
    HORIZONS.map((d) => h("option", { value: d, selected: d === 30 }, `${d} days ahead`)),
  );
  const chart = h("div", { class: "curve-chart" });
  const facts = h("div", { class: "curve-facts" });
  const distribution = h("div", { class: "distribution" }, h("p", { class: "muted" }, "Loading…"));
  const consolidation = h("div", { class: "consolidation" }, h("p", { class: "muted" }, "Loading…"));
  root.append(
    card(
      "Retrievability",
      h("p", { class: "muted" }, "The FSRS forgetting curve of the memory's stored state, from its last review on; dots mark reviews and recorded retrievals."),
      h("div", { class: "toolbar" }, h("label", {}, "memory", picker), h("label", {}, "horizon", horizon)),
      h("div", { class: "columns curve-columns" }, chart, facts),
    ),
    h("div", { class: "columns" }, card("Distribution", distribution), card("Last consolidation", consolidation)),
  );

  let plot = null;
  let alive = true;
  let drawing = 0;
  let memory = ctx.params.get("memory");
  const redraw = async () => {
    const seq = ++drawing;
    if (plot) plot.destroy();
    plot = null;
    if (!memory) {
      replace(chart, h("p", { class: "muted" }, "No episode in this session yet: pick a memory by id with #/dynamics?memory=<id>."));
      return;
    }
    const drawn = await drawCurve(chart, facts, ctx, memory, Number(horizon.value));
    // A later pick, or another view, took over while this one loaded: drop it.
    if (!alive || seq !== drawing) {
      if (drawn) drawn.destroy();
      return;
    }
    plot = drawn;
  };
  // uPlot draws at a fixed size: follow the column's width as the window changes.
  const resized = new ResizeObserver(() => {
    if (!plot) return;
    const width = curveWidth(chart);
    if (width === plot.width) return;
    plot.setSize({ width, height: CURVE_HEIGHT });
    chart.dataset.width = String(plot.width);
  });
  resized.observe(chart);

  try {
    const page = await ctx.api("GET", "/api/v1/episodes?limit=100");
    const options = page.items.map((e) => h("option", { value: e.id }, excerpt(e.content, 70)));
    if (memory && !page.items.some((e) => e.id === memory)) {
      options.unshift(h("option", { value: memory }, `memory ${shortId(memory)}`));
    }
    replace(picker, options);
    memory = memory || (page.items[0] && page.items[0].id) || null;
    if (memory) picker.value = memory;
  } catch (err) {
    replace(chart, errorBox(err));
  }
  picker.addEventListener("change", () => {
    memory = picker.value;
    history.replaceState(null, "", `#/dynamics?memory=${encodeURIComponent(memory)}`);
    redraw();
  });
  horizon.addEventListener("change", redraw);
  await Promise.all([redraw(), drawDistribution(distribution, ctx), drawConsolidation(consolidation, ctx)]);
  return () => {
    alive = false;
    resized.disconnect();
    if (plot) plot.destroy();
    plot = null;
  };
}
