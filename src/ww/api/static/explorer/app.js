// The explorer's shell: a hash router over views/<name>.js, the session picker, the key
// prompt and ctx.api, through which every view reads the API.
//
// A view module exports render(root, ctx) and may return a cleanup function, run when
// another view replaces it. ctx = {api, session, navigate, params, vendor, caller}: caller is
// GET /api/v1/auth/whoami's answer ({auth, id, role, sessions}), or null while the key is
// missing or refused, so views call the admin-only routes for an admin only (a user's 403
// would be a console error on every visit).

import { h, replace, errorBox } from "./dom.js";

export const VIEWS = [
  { name: "sessions", title: "Sessions", hint: "what each session holds" },
  { name: "timeline", title: "Timeline", hint: "episodes over time" },
  { name: "recall", title: "Recall", hint: "query playground" },
  { name: "graph", title: "Graph", hint: "entities and relations" },
  { name: "dynamics", title: "Dynamics", hint: "fading and consolidation" },
  { name: "operator", title: "Operator", hint: "flags, circuits, health" },
];
const DEFAULT_VIEW = "sessions";
const KEY_STORE = "ww.explorer.key";
const SESSION_STORE = "ww.explorer.session";

// Vendored libraries under vendor/<name>/: the file to load and the global it defines
// (classic UMD builds) or `module: true` for an ES module. Unlisted names load
// vendor/<name>/<name>.min.js and return globalThis[name].
export const VENDORED = {};
const vendorLoads = new Map();

/** An API answer of 4xx/5xx: the envelope's message, its status and code. */
export class ApiError extends Error {
  constructor(message, status, code, requestId) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

const storage = window.sessionStorage;
let currentSession = storage.getItem(SESSION_STORE) || null;
let currentCleanup = null;
let caller = null;
let renderSeq = 0;
// The caller's rate-limit budget as the last API answer told it (X-RateLimit-* headers).
let lastRateLimit = null;

/** {limit, remaining, reset (a Date)} from the last answer that carried them, or null. */
export function rateLimit() {
  return lastRateLimit;
}

// API calls in flight, on <html data-pending> while any is (tests wait for it to go).
let inflight = 0;

function pending(delta) {
  inflight += delta;
  if (inflight > 0) document.documentElement.dataset.pending = String(inflight);
  else delete document.documentElement.dataset.pending;
}

function apiKey() {
  return storage.getItem(KEY_STORE);
}

/** Call the API as the explorer's user: the chosen session and the typed key. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (currentSession) headers["X-Session-ID"] = currentSession;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  pending(+1);
  try {
    response = await fetch(path, init);
  } finally {
    pending(-1);
  }
  const limit = response.headers.get("X-RateLimit-Limit");
  if (limit !== null) {
    lastRateLimit = {
      limit: Number(limit),
      remaining: Number(response.headers.get("X-RateLimit-Remaining")),
      reset: new Date(Number(response.headers.get("X-RateLimit-Reset")) * 1000),
    };
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401) promptKey(err.message);
    throw new ApiError(
      err.message || `${method} ${path}: HTTP ${response.status}`,
      response.status,
      err.code,
      err.request_id,
    );
  }
  return data;
}

/** Load a vendored library once; resolves to what it defines. */
export function vendor(name) {
  if (!vendorLoads.has(name)) {
    const spec = VENDORED[name] || {};
    const file = spec.file || `${name}.min.js`;
    const url = `/ui/vendor/${name}/${file}`;
    const load = spec.module
      ? import(url)
      : new Promise((resolve, reject) => {
          const script = h("script", { src: url });
          script.addEventListener("load", () => resolve(globalThis[spec.global || name]));
          script.addEventListener("error", () => reject(new Error(`cannot load ${url}`)));
          document.head.append(script);
        });
    vendorLoads.set(name, load);
  }
  return vendorLoads.get(name);
}

function navigate(hash) {
  const target = hash.startsWith("#") ? hash : `#${hash}`;
  if (location.hash === target) route();
  else location.hash = target;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query] = raw.split("?", 2);
  const known = VIEWS.some((v) => v.name === name);
  return { name: known ? name : DEFAULT_VIEW, params: new URLSearchParams(query || "") };
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  replace(
    nav,
    h(
      "ul",
      {},
      VIEWS.map((v) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href: `#/${v.name}`,
              class: v.name === active ? "active" : null,
              "aria-current": v.name === active ? "page" : null,
              "data-view": v.name,
            },
            h("span", { class: "nav-title" }, v.title),
            h("span", { class: "nav-hint" }, v.hint),
          ),
        ),
      ),
    ),
  );
}

async function route() {
  const seq = ++renderSeq;
  const { name, params } = parseHash();
  renderNav(name);
  if (typeof currentCleanup === "function") {
    try {
      currentCleanup();
    } catch (err) {
      console.warn("cleanup of the previous view failed", err);
    }
  }
  currentCleanup = null;
  const main = document.getElementById("view");
  const root = h("div", { class: "view", "data-view": name });
  replace(main, root);
  document.title = `${VIEWS.find((v) => v.name === name).title} · World Weaver explorer`;
  const ctx = { api, session: currentSession, navigate, params, vendor, caller };
  try {
    const mod = await import(`./views/${name}.js`);
    if (seq !== renderSeq) return;
    const cleanup = await mod.render(root, ctx);
    if (seq !== renderSeq) {
      // Another view replaced this one while it rendered: it is gone, stop what it keeps.
      if (typeof cleanup === "function") cleanup();
      return;
    }
    currentCleanup = cleanup || null;
  } catch (err) {
    if (seq !== renderSeq) return;
    root.append(errorBox(err));
  }
  // The view's render has returned (its own later calls show in data-pending).
  root.dataset.ready = "true";
}

function setSession(value) {
  const session = (value || "").trim() || null;
  currentSession = session;
  if (session) storage.setItem(SESSION_STORE, session);
  else storage.removeItem(SESSION_STORE);
  document.getElementById("session-input").value = session || "";
  route();
}

/** Who the key names (null without a valid key: the 401 has opened the key prompt). */
async function loadCaller() {
  try {
    caller = await api("GET", "/api/v1/auth/whoami");
  } catch {
    caller = null;
  }
}

/** The session choices: every session for an admin (GET /api/v1/sessions, an operator
 * route), a bound key's own sessions, none for a user who may use any (it types the id). */
async function loadSessionOptions() {
  const list = document.getElementById("session-options");
  let options = [];
  if (caller && caller.role === "admin") {
    try {
      const page = await api("GET", "/api/v1/sessions?limit=500");
      options = page.sessions.map((s) => h("option", { value: s.session_id }, `${s.episodes} episodes`));
    } catch {
      options = [];
    }
  } else if (caller && caller.sessions) {
    options = caller.sessions.map((id) => h("option", { value: id }));
  }
  replace(list, options);
}

/** Learn who the key is, then offer its sessions and draw the view for it. */
async function refreshCaller() {
  await loadCaller();
  loadSessionOptions();
  route();
}

function showKeyState() {
  const has = Boolean(apiKey());
  const state = document.getElementById("key-state");
  state.textContent = has ? "key set" : "no key";
  state.className = has ? "ok" : "muted";
}

let keyDialogOpen = false;

/** Ask for a key (a 401 opens this); kept in sessionStorage, never elsewhere. */
export function promptKey(reason) {
  const dialog = document.getElementById("key-dialog");
  const error = document.getElementById("key-error");
  if (reason && apiKey()) {
    error.textContent = `The server refused the key: ${reason}`;
    error.hidden = false;
  } else {
    error.hidden = true;
  }
  if (!keyDialogOpen) {
    keyDialogOpen = true;
    dialog.showModal();
    document.getElementById("key-input").focus();
  }
}

function wireKeyDialog() {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  dialog.addEventListener("close", () => {
    keyDialogOpen = false;
    if (dialog.returnValue === "save" && input.value.trim()) {
      storage.setItem(KEY_STORE, input.value.trim());
      input.value = "";
      showKeyState();
      refreshCaller();
    }
  });
  document.getElementById("key-cancel").addEventListener("click", () => dialog.close("cancel"));
  document.getElementById("key-forget").addEventListener("click", () => {
    storage.removeItem(KEY_STORE);
    input.value = "";
    showKeyState();
    caller = null;
    replace(document.getElementById("session-options"));
    dialog.close("forget");
  });
  document.getElementById("key-button").addEventListener("click", () => promptKey());
}

function start() {
  wireKeyDialog();
  showKeyState();
  const form = document.getElementById("session-form");
  document.getElementById("session-input").value = currentSession || "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setSession(document.getElementById("session-input").value);
  });
  window.addEventListener("hashchange", route);
  // Views may ask the shell to switch session (the sessions list does).
  window.addEventListener("ww:session", (e) => setSession(e.detail));
  refreshCaller();
}

start();
