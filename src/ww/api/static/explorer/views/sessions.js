// Sessions: what each session holds; choosing one makes it the X-Session-ID of every call.
import { ago, card, errorBox, fmtTime, h, num, table } from "../dom.js";

function useSession(id) {
  window.dispatchEvent(new CustomEvent("ww:session", { detail: id }));
}

function statsOf(s) {
  return h(
    "div",
    { class: "row" },
    [
      ["episodes", s.episodes],
      ["archived", s.archived],
      ["pending index", s.pending],
      ["entity versions", s.entities],
      ["skills", s.skills],
      ["characters of text", s.content_chars],
    ].map(([label, value]) => h("div", { class: "stat" }, h("b", {}, num(value)), h("span", {}, label))),
    h("div", { class: "stat" }, h("b", {}, ago(s.last_activity)), h("span", {}, "last activity")),
  );
}

async function renderCurrent(root, ctx) {
  const box = card(ctx.session ? `Session ${ctx.session}` : "Default session");
  root.append(box);
  if (!ctx.session) {
    box.append(
      h("p", { class: "muted" }, "No session chosen: calls use the server's WW_SESSION_ID."),
    );
    return;
  }
  try {
    const s = await ctx.api("GET", `/api/v1/sessions/${encodeURIComponent(ctx.session)}`);
    box.append(statsOf(s), h("p", { class: "muted" }, `created ${fmtTime(s.created_at)}`));
  } catch (err) {
    box.append(err.status === 404 ? h("p", { class: "muted" }, "Nothing stored in this session yet.") : errorBox(err));
  }
}

async function renderList(root, ctx) {
  const box = card("All sessions");
  root.append(box);
  if (!ctx.caller || ctx.caller.role !== "admin") {
    // Listing is an operator route: a user is not sent to a 403, it types its session.
    const own = ctx.caller && ctx.caller.sessions;
    box.append(h("p", { class: "muted", id: "sessions-admin-only" }, "Listing sessions needs an admin key; type a session id in the header instead."));
    if (own && own.length) {
      const pick = (id) => (e) => {
        e.preventDefault();
        useSession(id);
      };
      box.append(h("p", {}, "This key may use: ", own.map((id, i) => [i ? ", " : "", h("a", { href: "#/sessions", "data-session": id, onclick: pick(id) }, id)])));
    }
    return;
  }
  let page;
  try {
    page = await ctx.api("GET", "/api/v1/sessions?limit=500");
  } catch (err) {
    box.append(
      err.status === 403
        ? h("p", { class: "muted" }, "Listing sessions needs an admin key; type a session id in the header instead.")
        : errorBox(err),
    );
    return;
  }
  if (!page.sessions.length) {
    box.append(h("p", { class: "muted" }, "No sessions yet."));
    return;
  }
  const rows = page.sessions.map((s) =>
    h(
      "tr",
      {
        class: `selectable${s.session_id === ctx.session ? " selected" : ""}`,
        "data-session": s.session_id,
        onclick: () => useSession(s.session_id),
      },
      h("td", {}, h("code", {}, s.session_id)),
      h("td", { class: "num" }, num(s.episodes)),
      h("td", { class: "num" }, num(s.archived)),
      h("td", { class: "num" }, num(s.pending)),
      h("td", { class: "num" }, num(s.entities)),
      h("td", { class: "num" }, num(s.skills)),
      h("td", { class: "num", title: "characters of episode content" }, num(s.content_chars)),
      h("td", { title: fmtTime(s.last_activity) }, ago(s.last_activity)),
      h("td", {}, fmtTime(s.created_at)),
    ),
  );
  const head = ["Session", "Episodes", "Archived", "Pending", "Entities", "Skills", "Text (chars)", "Last activity", "Created"];
  box.append(
    table(head, rows, { id: "sessions-table" }),
    h("p", { class: "muted", hidden: !page.next_cursor }, "Showing the first 500 sessions."),
    h("p", { class: "muted" }, "Click a session to work in it: every view then reads that session."),
  );
}

export async function render(root, ctx) {
  root.append(h("h1", {}, "Sessions"));
  await renderCurrent(root, ctx);
  await renderList(root, ctx);
}
