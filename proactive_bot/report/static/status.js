// The status page: the recent notifications, and one notification live. Vanilla JS, no build
// step; every figure comes from the front door's API (GET /api/notifications...), polled.
"use strict";

const CODE = new URLSearchParams(location.search).get("code") || "";
const API = "/api/notifications";
const POLL_MS = 1500;
const RECORDED = "?counts=recorded"; // counts as last counted: no recipient row read per view
const stale = (status) => !status.countedAt || Date.now() - Date.parse(status.countedAt) > 2 * POLL_MS;
const SAMPLES = 120; // points on the chart, one per count (~2 s apart): the last ~4 minutes
const SETTLED = ["sent", "failed", "gone", "skipped", "unconfirmed", "recalled", "expired", "cancelled"];
const FILTERS = ["failed", "gone", "unconfirmed", "unread", "sent", "skipped", "retrying", "sending",
  "recalled", "expired", "cancelled"];

const $ = (id) => document.getElementById(id);
const withCode = (url) => CODE ? url + (url.includes("?") ? "&" : "?") + "code=" + encodeURIComponent(CODE) : url;

// The key travels in the address: every link the page makes keeps it.
for (const a of document.querySelectorAll("a[data-home]")) a.href = withCode(a.getAttribute("href"));

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(withCode(API + path), init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { message: text } }; }
  if (response.status === 401) {
    throw new ApiError(401, "The function key was refused (missing, wrong or rotated): open this page " +
      "with ?code=<function key>, as `make run` prints it.");
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error && data.error.message) || text);
  return { status: response.status, data };
}

function banner(message) {
  const b = $("banner");
  b.textContent = message || "";
  b.hidden = !message;
}

function cell(tr, value, cls) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  td.title = td.textContent;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function audience(to) {
  if (!to) return "";
  if (to.all) return "everyone" + (to.channelId ? " on " + to.channelId : "");
  if (to.teamId) return "team " + to.teamId;
  if (to.aadObjectIds) return "a list of users";
  return Object.entries(to).map(([k, v]) => k + "=" + v).join(" ");
}

const when = (iso) => iso ? new Date(iso).toLocaleString() : "";

// ---- the recent notifications ----

async function listView() {
  $("app").replaceChildren($("list-view").content.cloneNode(true));
  let offset = 0;
  const more = async () => {
    const { data } = await api("GET", "?offset=" + offset);
    for (const n of data.notifications) {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = withCode("/api/status/n/" + encodeURIComponent(n.id));
      link.textContent = n.id;
      cell(tr, "").appendChild(link);
      cell(tr, when(n.createdAt));
      cell(tr, audience(n.to));
      const state = cell(tr, "…", "state");
      cell(tr, n.recipients);
      const [sent, failed, recalled, pending] = ["sent", "failed", "recalled", "pending"].map((c) => cell(tr, "", c));
      $("recent").appendChild(tr);
      // Its counts as last counted (the one status path, kept beside its record): asking for
      // them asks for a recount if they are old, so the list looks once more, and again while
      // something is pending (each look cheap: no recipient row is read).
      const fill = (first) => api("GET", "/" + encodeURIComponent(n.id) + RECORDED).then(({ data: s }) => {
        state.textContent = s.countedAt ? s.state : "…";
        sent.textContent = s.counts.sent;
        failed.textContent = s.counts.failed;
        recalled.textContent = s.counts.recalled;
        pending.textContent = s.counts.pending;
        const again = !s.countedAt || s.counts.pending > 0 || (first && stale(s));
        if (again && tr.isConnected) setTimeout(() => fill(false), 2 * POLL_MS);
      }).catch(() => {});
      fill(true);
    }
    offset = data.nextOffset;
    $("older").hidden = offset === null;
  };
  $("older").onclick = () => more().catch((e) => banner(e.message));
  await more();
}

// ---- one notification, live ----

function oneView(id) {
  $("app").replaceChildren($("one-view").content.cloneNode(true));
  $("where").textContent = "/ " + id;
  const path = "/" + encodeURIComponent(id);
  const samples = []; // {t, sent, throttled} as polled
  let budget = null;
  let filter = "";
  let cursors = [null]; // the cursor of each page shown so far; the last is the current page's
  let next = null;

  for (const name of FILTERS) $("filter").add(new Option(name, name));
  const csvLink = () => { $("csv").href = withCode(API + path + "/recipients.csv" + (filter ? "?state=" + filter : "")); };
  csvLink();
  $("filter").onchange = () => { filter = $("filter").value; cursors = [null]; csvLink(); rows().catch(show); };
  $("next").onclick = () => { cursors.push(next); rows().catch(show); };
  $("first").onclick = () => { cursors = [null]; rows().catch(show); };

  async function rows() {
    const query = new URLSearchParams();
    if (filter) query.set("state", filter);
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.set("cursor", cursor);
    const { data } = await api("GET", path + "/recipients?" + query);
    budget = data.budgetPerSecond;
    const body = $("rows");
    body.replaceChildren();
    for (const r of data.rows) {
      const tr = document.createElement("tr");
      tr.dataset.state = r.state;
      cell(tr, r.userId);
      cell(tr, r.conversationId);
      cell(tr, r.state, "state-" + r.state);
      cell(tr, r.reason);
      cell(tr, r.httpStatus);
      cell(tr, r.attempts);
      cell(tr, when(r.lastAttemptAt));
      cell(tr, when(r.readAt));
      body.appendChild(tr);
    }
    next = data.cursor;
    $("next").hidden = !next;
    $("first").hidden = cursors.length === 1;
  }

  function draw(status) {
    const c = status.counts;
    const settled = SETTLED.reduce((sum, name) => sum + (c[name] || 0), 0);
    const total = c.recipients;
    const done = status.state === "done" || (status.state === "cancelled" && c.pending === 0);
    const percent = done ? 100 : total ? Math.min(100, Math.floor((100 * settled) / total)) : 0;
    $("title").textContent = status.id;
    $("text").textContent = status.note ? status.note : "";
    $("bar").style.width = percent + "%";
    document.querySelector(".progress").setAttribute("aria-valuenow", String(percent));
    $("percent").textContent = percent + " % (" + settled + " of " + total + ")";
    $("state").textContent = status.state;
    $("state").dataset.state = status.state;
    const list = $("counts");
    list.replaceChildren();
    for (const [name, n] of Object.entries(c)) {
      const li = document.createElement("li");
      li.dataset.count = name;
      li.append(name);
      const b = document.createElement("b");
      b.textContent = n;
      li.appendChild(b);
      list.appendChild(li);
    }
    // Sampled when the rows were counted, once per count (polls in between see the same one).
    const t = status.countedAt ? Date.parse(status.countedAt) / 1000 : null;
    if (t !== null && (!samples.length || samples[samples.length - 1].t < t)) {
      samples.push({ t, sent: c.sent + c.recalled, throttled: c.throttledRetries });
      if (samples.length > SAMPLES) samples.shift();
    }
    $("counted").textContent = t === null ? "not counted yet" : "counted " + Math.max(0, Math.round(Date.now() / 1000 - t)) + " s ago";
    const rate = recentRate();
    $("pace").textContent = "pace " + rate.toFixed(1) + "/s" + (budget ? " of a " + budget + "/s budget" : "");
    $("eta").textContent = done ? "finished" : rate > 0 ? "about " + Math.ceil(c.pending / rate) + " s to go" : "ETA unknown";
    chart();
  }

  function perSecond(key) {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = samples[i].t - samples[i - 1].t;
      out.push(dt > 0 ? Math.max(0, samples[i][key] - samples[i - 1][key]) / dt : 0);
    }
    return out;
  }

  function recentRate() { // sends/s over the last ~10 s of samples
    if (!samples.length) return 0;
    const last = samples[samples.length - 1];
    const first = samples.find((s) => last.t - s.t <= 10) || last;
    return last.t > first.t ? (last.sent - first.sent) / (last.t - first.t) : 0;
  }

  function chart() {
    const canvas = $("chart"), g = canvas.getContext("2d");
    const sends = perSecond("sent"), throttled = perSecond("throttled");
    const top = Math.max(1, budget || 0, ...sends, ...throttled) * 1.1;
    const span = Math.max(1, sends.length - 1); // the samples so far fill the width
    const x = (i) => (i / span) * canvas.width, y = (v) => canvas.height - (v / top) * (canvas.height - 10);
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (budget) { g.setLineDash([4, 4]); g.strokeStyle = "#8a8886"; g.beginPath(); g.moveTo(0, y(budget)); g.lineTo(canvas.width, y(budget)); g.stroke(); g.setLineDash([]); }
    for (const [series, color] of [[sends, "#2b88d8"], [throttled, "#d13438"]]) {
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      series.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
      g.stroke();
    }
    g.fillStyle = "#605e5c"; g.fillText(top.toFixed(0) + "/s", 4, 12);
  }

  function show(error) {
    if (error.status === 404) banner("This notification is no longer recorded here.");
    else banner(error.message);
  }

  async function act(question, method, suffix, body) {
    if (!confirm(question)) return;
    const out = $("result");
    out.hidden = false;
    try {
      const { status, data } = await api(method, path + suffix, body);
      out.textContent = status + " " + JSON.stringify(data, null, 1);
    } catch (error) {
      out.textContent = (error.status || "") + " " + error.message;
    }
    poll().catch(show);
  }
  $("edit").onclick = () => {
    const text = prompt("The new text (everyone reached sees it replaced; those not reached yet get it):");
    if (text) act("Edit " + id + " for everyone?", "PATCH", "", { text });
  };
  $("recall").onclick = () => act("Recall " + id + "? What is not sent is cancelled, what is sent is deleted.", "DELETE", "");
  $("resend").onclick = () => act("Send " + id + " once more to its unconfirmed recipients?", "POST", "/resend?state=unconfirmed");

  async function poll() {
    const { data } = await api("GET", path + RECORDED);
    draw(data);
    await rows();
    banner("");
  }
  const loop = async () => {
    try { await poll(); } catch (error) { show(error); }
    setTimeout(loop, POLL_MS);
  };
  loop();
}

if ($("app")) {
  const match = location.pathname.match(/\/api\/status\/n\/(.+)$/);
  const run = match ? Promise.resolve(oneView(decodeURIComponent(match[1]))) : listView();
  run.catch((error) => banner(error.message));
}
