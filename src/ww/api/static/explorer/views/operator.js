// Operator view (admin key): health, the emergency level, runtime flags, circuits, the rate
// limit and the audit of control changes. Every switch calls /api/v1/control.
import { rateLimit } from "../app.js";
import { ago, card, errorBox, fmtTime, h, num, replace, table } from "../dom.js";

const STATE_CLASS = { ok: "good", closed: "good", open: "bad", half_open: "warn", NONE: "good", LIMITED: "warn", LOCKDOWN: "bad" };

function pill(text) {
  return h("span", { class: `pill ${STATE_CLASS[text] || (text === "degraded" ? "warn" : "")}` }, text);
}

async function section(box, load) {
  try {
    await load();
  } catch (err) {
    box.append(err.status === 403 ? h("p", { class: "muted" }, "This needs an admin key (Key… in the header).") : errorBox(err));
  }
}

function healthCard(ctx, box) {
  return section(box, async () => {
    const hl = await ctx.api("GET", "/api/v1/health");
    box.append(
      h("div", { class: "row" }, h("span", { class: "stat" }, h("b", {}, pill(hl.status)), h("span", {}, `version ${hl.version} · worker ${hl.worker_pid ?? "–"}`))),
      h("h3", {}, "Components"),
      h("div", { class: "row" }, Object.entries(hl.components || {}).map(([k, v]) => h("span", {}, `${k} `, pill(v)))),
      h("div", {}, hl.disk ? [h("h3", {}, "Disk"), h("dl", { class: "kv" }, h("dt", {}, "Free"), h("dd", {}, `${num(hl.disk.free_mb, 0)} MB (min ${hl.disk.min_free_mb} MB)`), h("dt", {}, "Writes"), h("dd", {}, hl.disk.writes), h("dt", {}, "Learning"), h("dd", {}, hl.disk.learning))] : null),
    );
  });
}

function emergencyCard(ctx, box, refresh) {
  return section(box, async () => {
    const e = await ctx.api("GET", "/api/v1/control/emergency");
    const reason = h("input", { id: "emergency-reason", "aria-label": "reason for the level (shown in health)", placeholder: "reason (shown in health)", maxlength: 500 });
    const act = async (path, body) => {
      try {
        await ctx.api("POST", path, body);
        refresh();
      } catch (err) {
        box.append(errorBox(err));
      }
    };
    const panic = (level) => {
      if (!reason.value.trim()) {
        reason.focus();
        reason.placeholder = "a reason is required";
        return;
      }
      act("/api/v1/control/emergency/panic", { level, reason: reason.value.trim() });
    };
    box.append(
      h("div", { class: "row", id: "emergency-level" }, "Level ", pill(e.level), e.reason ? h("span", { class: "muted" }, ` ${e.reason}`) : null, e.since ? h("span", { class: "muted" }, ` since ${fmtTime(e.since)} by ${e.set_by || "?"}`) : null),
      h(
        "div",
        { class: "row" },
        reason,
        h("button", { type: "button", onclick: () => panic("LIMITED"), disabled: e.level !== "NONE" }, "Read-only (LIMITED)"),
        h("button", { type: "button", class: "danger", onclick: () => panic("LOCKDOWN"), disabled: e.level === "LOCKDOWN" }, "LOCKDOWN"),
        h("button", { type: "button", onclick: () => act("/api/v1/control/emergency/recover", { level: "NONE", reason: reason.value.trim() || null }), disabled: e.level === "NONE" }, "Recover"),
      ),
    );
  });
}

function flagsCard(ctx, box) {
  return section(box, async () => {
    const { flags } = await ctx.api("GET", "/api/v1/control/flags");
    const rows = flags.map((f) => {
      const input = h("input", { type: "checkbox", checked: f.enabled, "data-flag": f.name, "aria-label": f.name });
      const source = h("td", { class: "muted" }, f.source);
      input.addEventListener("change", async () => {
        input.disabled = true;
        try {
          const change = await ctx.api("PATCH", `/api/v1/control/flags/${encodeURIComponent(f.name)}`, { enabled: input.checked });
          input.checked = change.flag.enabled;
          source.textContent = change.flag.source;
        } catch (err) {
          input.checked = !input.checked;
          box.append(errorBox(err));
        } finally {
          input.disabled = false;
        }
      });
      return h(
        "tr",
        {},
        h("td", {}, h("label", { class: "switch" }, input, h("code", {}, f.name))),
        h("td", {}, f.description),
        h("td", {}, f.default ? "on" : "off"),
        source,
      );
    });
    box.append(table(["Flag", "What it does", "Default", "Source"], rows, { id: "flags-table" }));
  });
}

function circuitsCard(ctx, box, refresh) {
  return section(box, async () => {
    const { circuits } = await ctx.api("GET", "/api/v1/control/circuits");
    const rows = circuits.map((c) =>
      h(
        "tr",
        { "data-circuit": c.name },
        h("td", {}, h("code", {}, c.name)),
        h("td", {}, pill(c.state)),
        h("td", { class: "num" }, `${c.failures} / ${c.threshold}`),
        h("td", { class: "num" }, num(c.rejected)),
        h("td", {}, c.opened_at ? `${ago(c.opened_at)}${c.retry_at ? `, retry ${fmtTime(c.retry_at)}` : ""}` : "–"),
        h(
          "td",
          {},
          c.state === "closed"
            ? null
            : h("button", {
                type: "button",
                onclick: async () => {
                  try {
                    await ctx.api("POST", `/api/v1/control/circuits/${encodeURIComponent(c.name)}`, { action: "reset" });
                    refresh();
                  } catch (err) {
                    box.append(errorBox(err));
                  }
                },
              }, "Reset"),
        ),
      ),
    );
    box.append(table(["Circuit", "State", "Failures", "Rejected", "Opened", ""], rows, { id: "circuits-table" }), h("p", { class: "muted" }, "States are this worker's (each worker keeps its own)."));
  });
}

function rateCard(ctx, box) {
  return section(box, async () => {
    const { flags } = await ctx.api("GET", "/api/v1/control/flags");
    const on = flags.find((f) => f.name === "api_rate_limiting");
    const rl = rateLimit();
    box.append(
      h(
        "dl",
        { class: "kv", id: "rate-limit" },
        h("dt", {}, "Rate limiting"),
        h("dd", {}, on && on.enabled ? pill("ok") : h("span", { class: "pill warn" }, "off")),
        h("dt", {}, "This key's budget"),
        h("dd", {}, rl ? `${rl.remaining} of ${rl.limit} left, resets ${fmtTime(rl.reset.toISOString())}` : "not reported (limits off, or exempt)"),
      ),
    );
  });
}

function auditCard(ctx, box) {
  return section(box, async () => {
    const page = await ctx.api("GET", "/api/v1/control/audit?limit=20");
    if (!page.items.length) {
      box.append(h("p", { class: "muted" }, "No control change yet."));
      return;
    }
    box.append(
      table(
        ["When", "Kind", "Change", "By"],
        page.items.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.kind), h("td", {}, `${a.name}: ${a.old} → ${a.new}${a.reason ? ` (${a.reason})` : ""}`), h("td", {}, a.who))),
      ),
    );
  });
}

/** A user's view: health (open to anyone) and what the rest needs, with no call that the
 * server would refuse. */
async function renderForUser(root, ctx) {
  const health = card("Health");
  health.id = "health";
  replace(
    root,
    h("h1", {}, "Operator"),
    h("div", { class: "stack" }, health, card("Control plane", h("p", { class: "muted", id: "operator-admin-only" }, "Flags, the emergency level, circuits and the audit need an admin key (Key… in the header)."))),
  );
  await healthCard(ctx, health);
}

export function render(root, ctx) {
  if (!ctx.caller || ctx.caller.role !== "admin") return renderForUser(root, ctx).then(() => null);
  let alive = true;
  const paint = async () => {
    if (!alive) return;
    const boxes = {
      health: card("Health"),
      emergency: card("Emergency level"),
      rate: card("Rate limit"),
      flags: card("Flags"),
      circuits: card("Circuits"),
      audit: card("Recent control changes"),
    };
    boxes.health.id = "health";
    replace(
      root,
      h("h1", {}, "Operator"),
      h("div", { class: "columns even" }, h("div", { class: "stack" }, boxes.health, boxes.emergency, boxes.rate), h("div", { class: "stack" }, boxes.circuits, boxes.audit)),
      boxes.flags,
    );
    await Promise.all([
      healthCard(ctx, boxes.health),
      emergencyCard(ctx, boxes.emergency, paint),
      flagsCard(ctx, boxes.flags),
      circuitsCard(ctx, boxes.circuits, paint),
      auditCard(ctx, boxes.audit),
    ]);
    await rateCard(ctx, boxes.rate);
  };
  paint();
  return () => {
    alive = false;
  };
}
