// Timeline: the session's episodes on a time axis, filtered; one opened shows its record,
// its learning state and its links (GET /api/v1/episodes/{id}/state).
import { ago, card, errorBox, fmtTime, h, num, replace, s, table } from "../dom.js";

const PAGE = 200;
const MOST = 1000;
const OUTCOMES = ["", "success", "failure", "partial", "neutral"];
const OUTCOME_CLASS = { success: "good", failure: "bad", partial: "warn", neutral: "" };

function listQuery(f) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (f.speaker) q.set("speaker", f.speaker);
  if (f.outcome) q.set("outcome", f.outcome);
  if (f.from) q.set("time_from", new Date(f.from).toISOString());
  if (f.to) q.set("time_to", new Date(f.to).toISOString());
  if (f.archived) q.set("include_archived", "true");
  const meta = {};
  for (const part of (f.tags || "").split(",")) {
    const [k, v] = part.split("=", 2).map((x) => (x || "").trim());
    if (k) meta[v === undefined || v === "" ? "tag" : k] = v === undefined || v === "" ? k : v;
  }
  if (Object.keys(meta).length) q.set("metadata", JSON.stringify(meta));
  return q;
}

async function loadEpisodes(ctx, f) {
  const q = listQuery(f);
  const out = [];
  for (;;) {
    const page = await ctx.api("GET", `/api/v1/episodes?${q}`);
    out.push(...page.items);
    if (!page.next_cursor || out.length >= MOST) return out;
    q.set("cursor", page.next_cursor);
  }
}

function textMatch(ep, text) {
  if (!text) return true;
  const hay = `${ep.content} ${ep.speaker || ""} ${JSON.stringify(ep.metadata)}`.toLowerCase();
  return text.toLowerCase().split(/\s+/).every((w) => hay.includes(w));
}

function tagsOf(ep) {
  return Object.entries(ep.metadata || {}).map(([k, v]) => (k === "tag" ? String(v) : `${k}=${v}`));
}

/** Episodes as dots on a time axis, one lane per speaker. */
function chart(episodes, selected, onPick) {
  const width = 720;
  const speakers = [...new Set(episodes.map((e) => e.speaker || "(none)"))].sort();
  const lane = 30;
  const top = 10;
  const left = 70;
  const height = top + lane * Math.max(speakers.length, 1) + 34;
  const times = episodes.map((e) => new Date(e.timestamp).getTime());
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (!(t1 > t0)) {
    t0 -= 3600e3;
    t1 += 3600e3;
  }
  const pad = (t1 - t0) * 0.03;
  t0 -= pad;
  t1 += pad;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "timeline-chart",
    role: "img",
    "aria-label": `${episodes.length} episodes over time`,
  });
  speakers.forEach((sp, i) => {
    const y = top + lane * i + lane / 2;
    svg.append(
      s("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "lane" }),
      s("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, sp),
    );
  });
  const axisY = top + lane * speakers.length + 8;
  svg.append(s("line", { x1: left, x2: width - 10, y1: axisY, y2: axisY, class: "axis" }));
  const ticks = 4;
  for (let i = 0; i <= ticks; i += 1) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const d = new Date(t);
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    svg.append(
      s("line", { x1: x(t), x2: x(t), y1: axisY, y2: axisY + 4, class: "axis" }),
      s("text", { x: x(t), y: axisY + 18, "text-anchor": anchor }, d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
    );
  }
  for (const ep of episodes) {
    const y = top + lane * speakers.indexOf(ep.speaker || "(none)") + lane / 2;
    const dot = s(
      "circle",
      {
        cx: x(new Date(ep.timestamp).getTime()),
        cy: y,
        r: 4 + 5 * ep.importance,
        class: `dot outcome-${ep.outcome}${ep.id === selected ? " selected" : ""}${ep.archived ? " archived" : ""}`,
        "data-id": ep.id,
        tabindex: 0,
        onclick: () => onPick(ep.id),
        onkeydown: (e) => e.key === "Enter" && onPick(ep.id),
      },
      s("title", {}, `${fmtTime(ep.timestamp)} · ${ep.speaker || "no speaker"} · ${ep.outcome}\n${ep.content.slice(0, 160)}`),
    );
    svg.append(dot);
  }
  return svg;
}

function bar(fraction, cls = "") {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h("span", { class: `meter ${cls}` }, h("span", { style: { width: `${pct}%` } }));
}

function shortRow(ctx, ep, extra) {
  return h(
    "li",
    {},
    h("a", { href: `#/timeline?id=${ep.id}` }, fmtTime(ep.timestamp)),
    " ",
    h("span", { class: "muted" }, ep.speaker || ""),
    " — ",
    ep.content.slice(0, 90),
    extra ? h("span", { class: "muted" }, ` ${extra}`) : null,
  );
}

function detail(ctx, st) {
  const ep = st.episode;
  const f = ep.fsrs;
  const learning = h(
    "dl",
    { class: "kv", id: "learning-state" },
    h("dt", {}, "Retrievability"),
    h("dd", {}, bar(st.retrievability), ` ${num(st.retrievability)}`),
    h("dt", {}, "Stability"),
    h("dd", {}, `${num(f.stability, 2)} day${f.stability === 1 ? "" : "s"}`),
    h("dt", {}, "Difficulty"),
    h("dd", {}, num(f.difficulty, 2)),
    h("dt", {}, "Reviews / lapses"),
    h("dd", {}, `${f.reps} / ${f.lapses} · last ${fmtTime(f.last_review)}`),
    h("dt", {}, "Value"),
    h("dd", {}, bar(st.value, "value"), ` ${num(st.value)} `, h("span", { class: "muted" }, `(${st.rewards} rewards)`)),
    h("dt", {}, "Importance"),
    h("dd", {}, bar(ep.importance), ` ${num(ep.importance)}`),
    h("dt", {}, "Accesses"),
    h("dd", {}, `${ep.access_count} · last ${ago(ep.last_accessed)}`),
  );
  const meta = h(
    "dl",
    { class: "kv" },
    h("dt", {}, "Id"),
    h("dd", {}, h("code", {}, ep.id)),
    h("dt", {}, "Time"),
    h("dd", {}, fmtTime(ep.timestamp)),
    h("dt", {}, "Speaker"),
    h("dd", {}, ep.speaker || "–"),
    h("dt", {}, "Outcome"),
    h("dd", {}, h("span", { class: `pill ${OUTCOME_CLASS[ep.outcome] || ""}` }, ep.outcome)),
    h("dt", {}, "Source"),
    h("dd", {}, ep.source || "–"),
    h("dt", {}, "External id"),
    h("dd", {}, ep.external_id || "–"),
    h("dt", {}, "Context"),
    h("dd", {}, h("code", {}, JSON.stringify(Object.fromEntries(Object.entries(ep.context).filter(([, v]) => v !== null && !(typeof v === "object" && !Object.keys(v).length)))))),
    h("dt", {}, "Metadata"),
    h("dd", {}, h("code", {}, JSON.stringify(ep.metadata))),
    h("dt", {}, "Index"),
    h("dd", {}, `${ep.index_state}${ep.archived ? " · archived" : ""}`),
  );
  const links = h(
    "div",
    { id: "episode-links" },
    h("h3", {}, "Temporal neighbours"),
    st.neighbours.length
      ? h("ul", { class: "links" }, st.neighbours.map((n) => shortRow(ctx, n)))
      : h("p", { class: "muted" }, "none"),
    h("h3", {}, "Hebbian edges (co-retrieved)"),
    st.hebbian.length
      ? h("ul", { class: "links" }, st.hebbian.map((e) => h("li", {}, h("a", { href: `#/timeline?id=${e.memory_id}` }, h("code", {}, e.memory_id.slice(0, 8))), ` weight ${num(e.weight)} · ${ago(e.last_strengthened)}`)))
      : h("p", { class: "muted" }, "none"),
    h("h3", {}, "Consolidation"),
    st.consolidation.length
      ? h("ul", { class: "links" }, st.consolidation.map((l) => h("li", {}, `${l.link_type}: `, h("code", {}, (l.source_id === ep.id ? l.target_id : l.source_id).slice(0, 8)), ` · ${fmtTime(l.created_at)}`)))
      : h("p", { class: "muted" }, "not part of any consolidation"),
  );
  return h(
    "div",
    { class: "stack", id: "episode-detail", "data-id": ep.id },
    h("blockquote", { class: "content" }, ep.content),
    h("h3", {}, "Learning state"),
    learning,
    h("h3", {}, "Record"),
    meta,
    links,
  );
}

export async function render(root, ctx) {
  const p = ctx.params;
  const filters = {
    speaker: p.get("speaker") || "",
    tags: p.get("tags") || "",
    outcome: p.get("outcome") || "",
    from: p.get("from") || "",
    to: p.get("to") || "",
    text: p.get("text") || "",
    archived: p.get("archived") === "1",
  };
  const selected = p.get("id");
  const field = (name, label, attrs = {}) =>
    h("label", {}, label, h("input", { name, value: filters[name], ...attrs }));
  const form = h(
    "form",
    { class: "toolbar", id: "timeline-filters" },
    field("text", "Text", { placeholder: "words in the content", type: "search" }),
    field("speaker", "Speaker", { placeholder: "exact speaker" }),
    field("tags", "Tags", { placeholder: "deploy, or key=value" }),
    h("label", {}, "Outcome", h("select", { name: "outcome" }, OUTCOMES.map((o) => h("option", { value: o, selected: o === filters.outcome }, o || "any")))),
    field("from", "From", { type: "datetime-local" }),
    field("to", "To", { type: "datetime-local" }),
    h("label", { class: "switch" }, h("input", { type: "checkbox", name: "archived", checked: filters.archived }), "archived"),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const key of ["text", "speaker", "tags", "outcome", "from", "to"]) {
      const v = String(data.get(key) || "").trim();
      if (v) q.set(key, v);
    }
    if (data.get("archived")) q.set("archived", "1");
    ctx.navigate(`#/timeline?${q}`);
  });
  const chartBox = card(null);
  const listBox = card(null);
  const side = card("Episode");
  root.append(
    h("h1", {}, "Timeline"),
    card(null, form),
    h("div", { class: "columns" }, h("div", { class: "stack" }, chartBox, listBox), side),
  );

  const pick = (id) => {
    const q = new URLSearchParams(p);
    q.set("id", id);
    ctx.navigate(`#/timeline?${q}`);
  };

  let episodes;
  try {
    episodes = (await loadEpisodes(ctx, filters)).filter((e) => textMatch(e, filters.text));
  } catch (err) {
    chartBox.append(errorBox(err));
    return;
  }
  if (!episodes.length) {
    chartBox.append(h("p", { class: "muted" }, "No episode matches."));
  } else {
    chartBox.append(
      h("div", { class: "row legend" }, `${episodes.length} episodes`, ...["success", "failure", "partial", "neutral"].map((o) => h("span", {}, h("i", { class: `dot-key outcome-${o}` }), o)), h("span", {}, "size = importance")),
      chart(episodes, selected, pick),
    );
    listBox.append(
      table(
        ["Time", "Speaker", "Outcome", "Tags", "Content"],
        episodes.map((ep) =>
          h(
            "tr",
            { class: `selectable${ep.id === selected ? " selected" : ""}`, "data-id": ep.id, onclick: () => pick(ep.id) },
            h("td", { title: fmtTime(ep.timestamp) }, fmtTime(ep.timestamp)),
            h("td", {}, ep.speaker || "–"),
            h("td", {}, h("span", { class: `pill ${OUTCOME_CLASS[ep.outcome] || ""}` }, ep.outcome)),
            h("td", {}, tagsOf(ep).map((t) => h("span", { class: "pill" }, t))),
            h("td", {}, ep.content.length > 120 ? `${ep.content.slice(0, 120)}…` : ep.content),
          ),
        ),
        { id: "episodes-table" },
      ),
    );
  }
  if (!selected) {
    side.append(h("p", { class: "muted" }, "Click a dot or a row to open an episode."));
    return;
  }
  try {
    const st = await ctx.api("GET", `/api/v1/episodes/${encodeURIComponent(selected)}/state`);
    replace(side, h("h2", {}, "Episode"), detail(ctx, st));
  } catch (err) {
    side.append(errorBox(err));
  }
}
