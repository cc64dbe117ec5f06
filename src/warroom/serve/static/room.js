// The incident room's live parts, in plain JavaScript (no build step, nothing fetched from elsewhere):
// the incident list refreshes itself, the incident page streams its timeline over SSE and swaps in
// fresh server-rendered sections when the run records something, and the approve/reject buttons
// and the cancel and run-again buttons call the API with the session cookie.
"use strict";

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

function refreshList(table) {
  fetch(table.dataset.source, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((items) => {
      const body = table.tBodies[0];
      body.replaceChildren();
      if (!items.length) {
        const row = body.insertRow();
        row.className = "empty";
        const cell = row.insertCell();
        cell.colSpan = 7;
        cell.textContent = "No incidents yet. They open when an alert arrives.";
        return;
      }
      for (const i of items) {
        const row = body.insertRow();
        row.dataset.id = i.id;
        const link = text("a", i.id);
        link.href = "/incidents/" + encodeURIComponent(i.id);
        row.insertCell().appendChild(link);
        const sev = row.insertCell();
        sev.textContent = i.severity;
        sev.className = "sev sev-" + i.severity;
        for (const v of [i.status, i.title, i.affected_services.join(", "), i.run_status || "", i.detected_at || ""]) {
          row.insertCell().textContent = v;
        }
      }
    })
    .catch(() => {});
}

// Timeline kinds after which the page's other sections have changed.
const CHANGES = new Set([
  "status_changed", "decision", "finding", "action_proposed", "action_approved", "action_executed",
  "action_verified", "communication_sent", "phase_finished", "note", "resumed", "cancelled", "step_failed",
  "run_failed", "rerun",
]);

function swapSections() {
  fetch(location.href, { credentials: "same-origin" })
    .then((r) => r.text())
    .then((html) => {
      const fresh = new DOMParser().parseFromString(html, "text/html");
      for (const id of ["summary", "diagnosis", "charts", "actions", "comms", "alerts"]) {
        const next = fresh.getElementById(id);
        const now = document.getElementById(id);
        if (next && now) now.replaceWith(next);
      }
      bindActions();
    });
}

let swapTimer = null;
function scheduleSwap() {
  clearTimeout(swapTimer);
  swapTimer = setTimeout(swapSections, 400);
}

function streamTimeline(live) {
  const list = document.getElementById("timeline");
  const state = document.getElementById("live-state");
  const source = new EventSource(live.dataset.stream + "?after=" + encodeURIComponent(live.dataset.after));
  source.addEventListener("timeline", (msg) => {
    const e = JSON.parse(msg.data);
    if (list.querySelector('[data-seq="' + e.seq + '"]')) return;
    const item = document.createElement("li");
    item.dataset.seq = e.seq;
    item.className = "k-" + e.kind;
    item.append(text("time", e.at.slice(11, 19)), " ", text("b", e.kind), " ", text("span", e.source, "src"), " " + e.summary);
    list.appendChild(item);
    if (CHANGES.has(e.kind)) scheduleSwap();
  });
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "reconnecting…"; };
}

function decide(button, body, errorId) {
  const error = document.getElementById(errorId || "action-error");
  fetch(button.dataset.url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  })
    .then((r) => r.json().then((data) => ({ ok: r.ok, data })))
    .then(({ ok, data }) => {
      if (!ok) {
        error.hidden = false;
        error.textContent = data.detail || "it was not recorded";
        return;
      }
      error.hidden = true;
      swapSections();
    });
}

function bindActions() {
  for (const b of document.querySelectorAll("button.approve")) {
    b.onclick = () => decide(b, {});
  }
  for (const b of document.querySelectorAll("button.reject")) {
    b.onclick = () => {
      const reason = prompt("Why reject this action?");
      if (reason) decide(b, { reason });
    };
  }
  const cancel = document.getElementById("cancel-run");
  if (cancel) {
    cancel.onclick = () => {
      const reason = prompt("Why cancel this investigation? (it stops for good; the incident stays open)");
      if (reason) decide(cancel, { reason }, "cancel-error");
    };
  }
  const rerun = document.getElementById("rerun");
  if (rerun) {
    rerun.onclick = () => {
      const reason = prompt("Why run it again? (e.g. the source that did not answer is back)");
      if (reason) decide(rerun, { reason }, "rerun-error");
    };
  }
}

const table = document.getElementById("incidents");
if (table) setInterval(() => refreshList(table), 1500);
const live = document.getElementById("live");
if (live) {
  streamTimeline(live);
  bindActions();
}
