// The officer console. Live through /api/v1/events (with a slow poll behind it);
// controls are shown to the operator role only (`GET /api/v1/whoami`), and the daemon
// enforces the same policy whatever the page shows.

import { startSession, getJson, postJson, subscribe, ApiError, sleep } from "./api.js";

const POLL_MS = 5000;
const ARM_MS = 4000;
const REFERRALS_SHOWN = 10;

const STEP_NAMES = {
  idle: "Idle: waiting for a traveler",
  document: "Passport / QR code",
  card: "Card",
  "ed-card": "ED card",
  fingerprints: "Fingerprints",
  face: "Face photo",
  printing: "Printing the landing record",
  "take-card": "Taking the card back",
  passage: "Passage (door open)",
  referred: "Referred",
  done: "Done",
};
const MODE_BADGES = {
  "in-service": ["IN SERVICE", "ok"],
  "out-of-service": ["OUT OF SERVICE", "bad"],
  maintenance: ["MAINTENANCE", "warn"],
  "fire-alarm": ["FIRE ALARM", "bad"],
};
const ALARM_TEXTS = {
  tailgating: "Tailgating: more than one person was in the lane",
  "device-fault": "A device fault ended a transaction",
};

const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => Array.from(document.querySelectorAll(selector));

const state = {
  role: "viewer",
  reasons: new Map(),
  gate: null,
  live: false,
};

// Every cell is built with textContent: nothing from the daemon is parsed as HTML.
function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(element, text, kind) {
  element.textContent = text;
  element.className = `badge ${kind}`;
}

function duration(ms) {
  if (ms < 10000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function clock(rfc3339) {
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? String(rfc3339 ?? "") : date.toLocaleTimeString([], { hour12: false });
}

const shortId = (id) => (id ? String(id).slice(0, 8) : "—");

function reasonOf(outcome) {
  return outcome && outcome.outcome === "referred" ? outcome.reason : null;
}

function reasonInfo(code) {
  const entry = state.reasons.get(code) || {};
  return {
    description: entry.description ?? entry.meaning ?? "",
    action: entry.recommended_action ?? entry.action ?? entry.officer_action ?? "",
  };
}

// ------------------------------------------------------------------ views

function showStatus(status) {
  $("#gate-id").textContent = status.gate_id;
  $("#lane").textContent = status.lane;
  $("#version").textContent = status.version;
  $("#uptime").textContent = duration(status.uptime_ms);
  const service = $("#service");
  if (!status.ready) badge(service, "STARTING", "warn");
  else if (status.in_service) badge(service, "DEVICES OK", "ok");
  else badge(service, "DEVICE PROBLEM", "bad");
}

function showStep(step, transaction) {
  $("#step").textContent = STEP_NAMES[step] || step;
  $("#step").dataset.step = step;
  $("#transaction").textContent = transaction ? shortId(transaction) : "—";
}

function showGate(gate) {
  state.gate = gate;
  showStep(gate.step, gate.transaction);
  const [text, kind] = MODE_BADGES[gate.mode] || [gate.mode, "off"];
  badge($("#mode"), text, kind);
  $("#mode").dataset.mode = gate.mode;
  const accepting = gate.mode === "in-service" && !(gate.interlocks && gate.interlocks.length);
  $("#accepting").textContent = accepting ? "yes" : "no";
  $("#interlocks").textContent = gate.interlocks && gate.interlocks.length ? gate.interlocks.join(", ") : "none";
  $("#served").textContent = String(gate.transactions ?? 0);
  const last = gate.last;
  if (last) {
    const reason = reasonOf(last.outcome);
    $("#last-outcome").textContent = reason ? `referred (${reason})` : "admitted";
  } else {
    $("#last-outcome").textContent = "—";
  }
  for (const button of $$("[data-mode]")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === gate.mode));
  }
  const alarm = gate.alarm;
  $("#alarm").hidden = !alarm;
  if (alarm) {
    const text = ALARM_TEXTS[alarm.kind] || `Alarm: ${alarm.kind}`;
    $("#alarm-text").textContent = alarm.record_id
      ? `ALARM — ${text} (transaction ${shortId(alarm.record_id)})`
      : `ALARM — ${text}`;
    $("#alarm").dataset.kind = alarm.kind;
  }
  $("#stamp-request").disabled = !gate.transaction || state.role !== "operator";
}

function showDevices(devices) {
  const body = $("#devices");
  body.replaceChildren();
  for (const d of devices) {
    const row = document.createElement("tr");
    row.dataset.device = d.id;
    cell(row, d.id);
    cell(row, d.class);
    cell(row, d.driver ? `${d.driver.name} ${d.driver.version}` : d.driver_path);
    cell(row, d.isolation);
    const stateCell = cell(row, "");
    const span = document.createElement("span");
    stateCell.appendChild(span);
    if (!d.enabled) badge(span, "DISABLED", "off");
    else badge(span, d.state, d.state === "READY" ? "ok" : d.state === "BUSY" ? "warn" : "bad");
    cell(row, d.fault || "", "fault");
    cell(row, String(d.restarts ?? 0));
    cell(row, d.media_present === true ? "present" : d.media_present === false ? "—" : "");
    body.appendChild(row);
  }
}

function showTransactions(transactions) {
  const body = $("#transactions");
  body.replaceChildren();
  for (const tx of transactions) {
    const reason = reasonOf(tx.outcome);
    const row = document.createElement("tr");
    row.dataset.record = tx.record_id;
    if (reason) row.className = "referred";
    cell(row, clock(tx.started_at));
    cell(row, shortId(tx.record_id), "code");
    cell(row, reason ? "referred" : "admitted");
    cell(row, reason || "", "code");
    cell(row, tx.decided_by || "");
    cell(row, duration(tx.duration_ms ?? 0));
    body.appendChild(row);
  }
  $("#no-transactions").hidden = transactions.length > 0;

  const referrals = transactions.filter((tx) => reasonOf(tx.outcome)).slice(0, REFERRALS_SHOWN);
  const list = $("#referrals");
  list.replaceChildren();
  for (const tx of referrals) {
    const code = reasonOf(tx.outcome);
    const info = reasonInfo(code);
    const row = document.createElement("tr");
    row.dataset.record = tx.record_id;
    row.dataset.reason = code;
    row.className = "referred";
    cell(row, clock(tx.started_at));
    cell(row, code, "code");
    cell(row, info.description);
    cell(row, info.action);
    cell(row, tx.decided_by || "");
    list.appendChild(row);
  }
  $("#no-referrals").hidden = referrals.length > 0;
}

function showError(message) {
  $("#error").textContent = message || "";
  $("#error").hidden = !message;
}

// ------------------------------------------------------------------ refresh

const loaders = {
  status: async () => showStatus(await getJson("/api/v1/status")),
  gate: async () => showGate(await getJson("/api/v1/gate")),
  devices: async () => showDevices(await getJson("/api/v1/devices")),
  transactions: async () => showTransactions(await getJson("/api/v1/transactions?limit=50")),
};

const pending = new Set();
let running = null;

/** Reloads the named parts (coalesced: one request per part at a time). */
function refresh(...parts) {
  for (const part of parts.length ? parts : Object.keys(loaders)) pending.add(part);
  if (!running) {
    running = (async () => {
      while (pending.size) {
        const batch = Array.from(pending);
        pending.clear();
        const results = await Promise.allSettled(batch.map((part) => loaders[part]()));
        const failed = results.find((r) => r.status === "rejected");
        showError(failed ? `cannot reach toriid: ${failed.reason.message}` : "");
      }
    })().finally(() => {
      running = null;
    });
  }
  return running;
}

function onEvent(name, data) {
  switch (name) {
    case "step-changed":
      if (data.step) showStep(data.step, data.transaction);
      refresh("gate");
      break;
    case "transaction-finished":
      refresh("gate", "transactions");
      break;
    case "device-state-changed":
      refresh("devices", "status");
      break;
    default:
      refresh("gate");
  }
}

// ------------------------------------------------------------------ controls

function say(message, isError = false) {
  const line = $("#control-message");
  line.textContent = message;
  line.classList.toggle("error", isError);
}

async function command(what, path, body) {
  try {
    const answer = await postJson(path, body);
    const accepted = answer && answer.accepted === false ? " (not taken: the gate is busy)" : "";
    say(`${what}: sent${accepted}`);
  } catch (error) {
    const status = error instanceof ApiError ? error.status : 0;
    if (status === 401 || status === 403) say(`${what}: not allowed for your role`, true);
    else say(`${what}: ${error.message}`, true);
  }
  refresh("gate", "transactions");
}

function disarm(button) {
  clearTimeout(button.armTimer);
  button.classList.remove("armed");
  button.textContent = button.dataset.label;
}

function wireControls() {
  for (const button of $$("[data-mode]")) {
    button.addEventListener("click", () =>
      command(`mode ${button.dataset.mode}`, "/api/v1/gate/mode", { mode: button.dataset.mode }),
    );
  }
  for (const button of $$("[data-door]")) {
    button.dataset.label = button.textContent;
    button.addEventListener("click", () => {
      if (!button.classList.contains("armed")) {
        for (const other of $$("[data-door].armed")) disarm(other);
        button.classList.add("armed");
        button.textContent = `Confirm ${button.dataset.command}?`;
        button.armTimer = setTimeout(() => disarm(button), ARM_MS);
        return;
      }
      disarm(button);
      const { door, command: doorCommand } = button.dataset;
      command(`${door} door ${doorCommand}`, "/api/v1/gate/doors", { door, command: doorCommand });
    });
  }
  $("#alarm-ack").addEventListener("click", () =>
    command("alarm acknowledged", "/api/v1/gate/alarm/acknowledge", {}),
  );
  $("#stamp-request").addEventListener("click", () =>
    command("stamp request noted", "/api/v1/gate/stamp-request", {}),
  );
}

function applyRole(role) {
  state.role = role;
  const operator = role === "operator";
  badge($("#role"), role, operator ? "info" : "off");
  $("#controls").hidden = !operator;
  $("#read-only-note").hidden = operator;
  for (const button of $$("[data-operator]")) {
    button.hidden = !operator;
    button.disabled = !operator;
  }
}

async function main() {
  applyRole("viewer");
  wireControls();
  const session = await startSession();
  applyRole(session.role);
  if (session.error) {
    $("#session-error").textContent = session.error;
    $("#session-error").hidden = false;
  }
  try {
    const codes = await getJson("/api/v1/reason-codes");
    for (const entry of Array.isArray(codes) ? codes : codes.reason_codes || []) {
      state.reasons.set(entry.code, entry);
    }
  } catch {
    // The codes are shown without their description until the next reload.
  }
  subscribe(onEvent, (live) => {
    state.live = live;
    badge($("#live"), live ? "live" : "offline", live ? "ok" : "off");
    if (live) refresh();
  });
  await refresh();
  for (;;) {
    await sleep(POLL_MS);
    await refresh();
  }
}

main();
