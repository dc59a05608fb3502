// Recall playground: a query ranked with its score parts; read-only unless the learning
// switch is on, in which case thumbs give feedback and the same query is ranked again.
import { card, errorBox, h, num, replace } from "../dom.js";

const PRESETS = ["balanced", "semantic", "keyword", "recent"];
const TYPES = ["episode", "entity", "skill"];
const PALETTE_SIZE = 12;
const partColour = new Map();

function colourOf(part) {
  if (!partColour.has(part)) partColour.set(part, (partColour.size % PALETTE_SIZE) + 1);
  return partColour.get(part);
}

function titleOf(hit) {
  const m = hit.memory;
  if (hit.memory_type === "episode") return m.content;
  if (hit.memory_type === "entity") return `${m.name} (${m.entity_type})${m.summary ? ` — ${m.summary}` : ""}`;
  return `${m.name}: ${m.task}`;
}

/** The score parts as one stacked bar: a part of value v takes v/n of the bar (n parts), so
 * the filled length is the parts' mean and hits compare by it; parts summing past n (a part
 * over 1) share the whole bar instead, so the bar never overflows. */
export function scoreBar(parts) {
  const entries = Object.entries(parts);
  const positive = entries.reduce((sum, [, v]) => sum + (v > 0 ? v : 0), 0);
  const n = Math.max(entries.length, positive) || 1;
  return h(
    "div",
    { class: "bar score-bar", title: entries.map(([k, v]) => `${k} ${num(v)}`).join("\n") },
    entries
      .filter(([, v]) => v > 0)
      .map(([k, v]) =>
        h("span", {
          class: `swatch-${colourOf(k)}`,
          "data-part": k,
          "data-value": v,
          title: `${k} ${num(v)}`,
          style: { width: `${(100 * v) / n}%` },
        }),
      ),
  );
}

function legend(hits) {
  const parts = [...new Set(hits.flatMap((x) => Object.keys(x.score_parts)))];
  return h(
    "div",
    { class: "legend" },
    "score parts:",
    parts.map((p) => h("span", {}, h("i", { class: `swatch-${colourOf(p)}` }), p)),
  );
}

function ranking(result, { feedback, moves } = {}) {
  if (!result.hits.length) return h("p", { class: "muted" }, "No hits.");
  return h(
    "ol",
    { class: "hits" },
    result.hits.map((hit, i) => {
      const move = moves ? moves.get(hit.id) : undefined;
      return h(
        "li",
        { class: "hit", "data-id": hit.id, "data-rank": i + 1 },
        h(
          "div",
          { class: "hit-head" },
          h("span", { class: "rank" }, `${i + 1}`),
          h("span", { class: "pill" }, hit.memory_type),
          h("span", { class: "hit-title" }, titleOf(hit)),
          move === undefined ? null : h("span", { class: `move ${move > 0 ? "ok" : move < 0 ? "bad" : "muted"}` }, move > 0 ? `▲${move}` : move < 0 ? `▼${-move}` : "="),
        ),
        h(
          "div",
          { class: "hit-score" },
          h("b", { class: "score" }, num(hit.score)),
          scoreBar(hit.score_parts),
          "value" in hit.score_parts ? h("span", { class: "muted value" }, `value ${num(hit.score_parts.value)}`) : null,
          feedback ? feedback(hit) : null,
        ),
      );
    }),
  );
}

export function render(root, ctx) {
  const p = ctx.params;
  const chosen = new Set((p.get("types") || TYPES.join(",")).split(","));
  const form = h(
    "form",
    { class: "toolbar", id: "recall-form" },
    h("label", { class: "grow" }, "Query", h("input", { name: "query", type: "search", value: p.get("q") || "", placeholder: "what do you want recalled?", required: true })),
    h("label", {}, "Preset", h("select", { name: "preset" }, PRESETS.map((x) => h("option", { value: x, selected: x === (p.get("preset") || "balanced") }, x)))),
    h("fieldset", { class: "types" }, h("legend", {}, "Memory types"), TYPES.map((t) => h("label", {}, h("input", { type: "checkbox", name: "types", value: t, checked: chosen.has(t) }), t))),
    h("button", { type: "submit", class: "primary" }, "Recall"),
  );
  const learnSwitch = h("input", { type: "checkbox", id: "learn-switch" });
  const learnNote = h("span", { class: "muted", id: "learn-note" });
  const showLearn = () => {
    learnNote.textContent = learnSwitch.checked
      ? "Learning ON: this recall is recorded (access, stability, Hebbian edges) and feedback changes values."
      : "Read-only: recall changes nothing (learn: false). Turn learning on to give feedback.";
  };
  learnSwitch.addEventListener("change", showLearn);
  showLearn();
  const results = card("Hits");
  results.id = "recall-results";
  const compare = h("div", { id: "recall-compare" });
  root.append(
    h("h1", {}, "Recall playground"),
    card(null, form, h("div", { class: "row learn-row" }, h("label", { class: "switch danger" }, learnSwitch, "Learning"), learnNote)),
    results,
    compare,
  );
  results.append(h("p", { class: "muted" }, "Type a query."));

  const request = (learn) => {
    const data = new FormData(form);
    return {
      query: String(data.get("query") || ""),
      preset: String(data.get("preset")),
      memory_types: data.getAll("types").map(String),
      learn,
    };
  };

  async function rankAgain(before, body, changes) {
    let after;
    try {
      after = await ctx.api("POST", "/api/v1/recall", { ...body, learn: false });
    } catch (err) {
      replace(compare, errorBox(err));
      return;
    }
    const rankBefore = new Map(before.hits.map((x, i) => [x.id, i]));
    const moves = new Map(after.hits.map((x, i) => [x.id, rankBefore.has(x.id) ? rankBefore.get(x.id) - i : 0]));
    replace(
      compare,
      card(
        "Feedback",
        h(
          "ul",
          { id: "feedback-result", class: "links" },
          changes.map((c) =>
            h(
              "li",
              { "data-id": c.memory_id },
              `reward ${num(c.reward)} → value `,
              h("b", { class: "value-before" }, num(c.value_before)),
              " → ",
              h("b", { class: "value-after" }, num(c.value_after)),
              c.stability_before !== null ? ` · stability ${num(c.stability_before, 2)} → ${num(c.stability_after, 2)} d` : "",
              c.labile ? "" : " · outside the lability window",
              c.edges_changed ? ` · ${c.edges_changed} edges changed` : "",
            ),
          ),
        ),
      ),
      h(
        "div",
        { class: "columns even" },
        card("Before feedback", ranking(before)),
        h("div", { id: "ranked-after" }, card("After feedback (read-only recall)", ranking(after, { moves }))),
      ),
    );
  }

  function thumbs(result, body) {
    return (hit) => {
      const give = async (reward, button) => {
        for (const b of button.parentElement.querySelectorAll("button")) b.disabled = true;
        try {
          const answer = await ctx.api("POST", "/api/v1/feedback", { recall_id: result.recall_id, rewards: { [hit.id]: reward } });
          button.classList.add("given");
          await rankAgain(result, body, answer.changes.filter((c) => c.memory_id === hit.id));
        } catch (err) {
          replace(compare, errorBox(err));
        }
      };
      const enabled = result.learned;
      const why = enabled ? null : "Recall with learning on to give feedback";
      const up = h("button", { type: "button", class: "thumb up", title: why || "Useful (reward 1)", disabled: !enabled }, "▲ useful");
      const down = h("button", { type: "button", class: "thumb down", title: why || "Not useful (reward 0)", disabled: !enabled }, "▼ not useful");
      up.addEventListener("click", () => give(1.0, up));
      down.addEventListener("click", () => give(0.0, down));
      return h("span", { class: "thumbs" }, up, down);
    };
  }

  async function run() {
    const body = request(learnSwitch.checked);
    if (!body.query.trim() || !body.memory_types.length) return;
    replace(results, h("h2", {}, "Hits"), h("p", { class: "muted" }, "Recalling…"));
    replace(compare);
    let result;
    try {
      result = await ctx.api("POST", "/api/v1/recall", body);
    } catch (err) {
      replace(results, h("h2", {}, "Hits"), errorBox(err));
      return;
    }
    result.learned = body.learn;
    const counts = Object.entries(result.counts || {}).map(([k, v]) => `${v} ${v === 1 ? k : k === "entity" ? "entities" : `${k}s`}`).join(", ");
    replace(
      results,
      h("h2", {}, "Hits"),
      h("p", { class: "muted" }, `${counts}${result.degraded ? " · degraded (a store was unavailable)" : ""} · ${body.learn ? "recorded (learning on)" : "read-only"}`),
      legend(result.hits),
      ranking(result, { feedback: thumbs(result, body) }),
    );
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run();
  });
  if (p.get("q")) run();
}
