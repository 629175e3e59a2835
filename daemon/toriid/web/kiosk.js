// The traveler's screen at the gate (shown by a kiosk browser on the gate's display).
//
// It follows the gate live: every event from /api/v1/events makes it read the gate's
// state again (`/api/v1/gate/personal` with the kiosk role: the ED card under edit and
// its field errors), and it also polls slowly, so a missed event only delays the screen.
// Referrals show guidance only, never their grounds (the reason code is not displayed).

import { startSession, getJson, postJson, subscribe, ApiError, sleep } from "./api.js";

const LANGUAGES = ["ja", "en", "zh-Hans", "zh-Hant", "ko"];
/** How long the result (welcome or guidance) stays once the gate is idle again. */
const RESULT_MS = 15000;
/** A language chosen on the idle screen is forgotten after this long without a traveler. */
const IDLE_LANGUAGE_MS = 60000;
/** Polling period while events flow, and while they do not. */
const POLL_LIVE_MS = 4000;
const POLL_OFFLINE_MS = 1000;
/** How long the screen waits for the gate's verdict on a submitted ED card. */
const ED_VERDICT_MS = 6000;

/** The engine's guidance sentences (reason.rs `Guidance::english`) → translation keys. */
const GUIDANCE_KEYS = {
  "Please see the officer at the gate.": "guidance.see_officer",
  "Please use the staffed immigration booth.": "guidance.use_booth",
  "Please leave the gate by the nearest exit.": "guidance.evacuate",
};
/** The guidance kinds (serde names of `Guidance`) → translation keys, if the API sends them. */
const GUIDANCE_KIND_KEYS = {
  "see-officer": "guidance.see_officer",
  "use-booth": "guidance.use_booth",
  evacuate: "guidance.evacuate",
};
/** edcard.rs `FieldError::problem` texts → translation keys. */
const PROBLEM_KEYS = {
  required: "err.required",
  "expected an airline code and a number, e.g. NH212": "err.flight",
  "at most 200 characters": "err.max200",
  "digits, spaces, + and - only": "err.phone",
  "between 1 and 90 days": "err.stay",
  "answer yes or no": "err.yesno",
};
/** Nationality (ICAO 9303 code) → the screen's first language for that traveler. */
const NATIONALITY_LANGUAGES = {
  JPN: "ja",
  CHN: "zh-Hans",
  SGP: "zh-Hans",
  TWN: "zh-Hant",
  HKG: "zh-Hant",
  MAC: "zh-Hant",
  KOR: "ko",
  PRK: "ko",
};
const TEXT_FIELDS = ["flight", "address_in_japan", "phone_in_japan", "occupation"];
const QUESTIONS = [
  "deported_before",
  "convicted_before",
  "carrying_prohibited_items",
  "carrying_firearms",
];
/** Progress stages per lane, and the stage each screen belongs to. */
const STAGES = {
  entry: ["document", "card", "ed-card", "fingerprints", "face", "finish"],
  exit: ["document", "card", "fingerprints", "finish"],
};
const SCREEN_STAGE = {
  document: "document",
  card: "card",
  "ed-card": "ed-card",
  fingerprints: "fingerprints",
  face: "face",
  printing: "finish",
  "take-card": "finish",
  passage: "finish",
  "result-admitted": "done",
};

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const state = {
  role: "viewer",
  gate: null,
  reachable: true,
  live: false,
  lang: "en",
  defaultLang: "en",
  /** The traveler pressed a language button (until the gate is idle again). */
  langChosen: false,
  /** The transaction of the traveler who chose it (`null`: chosen on the idle screen,
   * for the traveler about to start). */
  langTransaction: null,
  /** `last.record_id` already accounted for (the one at page load is not shown). */
  seenRecordId: undefined,
  /** {recordId, admitted, guidance, guidanceKind, notices, until} while the result shows. */
  result: null,
  screen: null,
  /** The transaction whose ED card is in the form. */
  edTransaction: null,
  edErrors: [],
  submitting: false,
};

const dictionaries = new Map();

async function loadLanguage(lang) {
  if (!dictionaries.has(lang)) {
    try {
      dictionaries.set(lang, await getJson(`/web/i18n/${lang}.json`));
    } catch {
      dictionaries.set(lang, {});
    }
  }
  return dictionaries.get(lang);
}

function t(key) {
  const dictionary = dictionaries.get(state.lang) || {};
  return dictionary[key] ?? (dictionaries.get("en") || {})[key] ?? key;
}

function translatePage() {
  document.documentElement.lang = state.lang;
  document.title = t("page.title");
  for (const element of $$("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const button of $$(".lang-button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
  }
  $("#ed-confirm").textContent = t(state.submitting ? "ed.checking" : "ed.confirm");
  showFieldErrors(state.edErrors);
  if (state.result) $("#guidance").textContent = guidanceText(state.result);
}

async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  await loadLanguage(lang);
  state.lang = lang;
  translatePage();
}

/** The browser's preferred language among the five, else English. */
function browserLanguage() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("ja")) return "ja";
    if (lower.startsWith("ko")) return "ko";
    if (/^zh-(tw|hk|mo|hant)/.test(lower)) return "zh-Hant";
    if (lower.startsWith("zh")) return "zh-Hans";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

/**
 * The traveler's language from what the gate says about them, if anything. The gate's
 * view carries no nationality today; `language` or `nationality` are used when present.
 */
function travelerLanguage(gate) {
  if (!gate) return null;
  if (LANGUAGES.includes(gate.language)) return gate.language;
  const nationality = gate.nationality ?? gate.traveler?.nationality;
  return (nationality && NATIONALITY_LANGUAGES[nationality]) || null;
}

// ------------------------------------------------------------------ gate state

function accepting(gate) {
  return gate.mode === "in-service" && !(gate.interlocks && gate.interlocks.length);
}

function screenFor(gate) {
  if (!gate) return "wait";
  if (gate.mode === "fire-alarm") return "fire";
  if (state.result) {
    const another = gate.transaction && gate.transaction !== state.result.recordId;
    if (another || Date.now() > state.result.until) state.result = null;
  }
  if (state.result) return state.result.admitted ? "result-admitted" : "result-referred";
  switch (gate.step) {
    case "idle":
      return accepting(gate) ? "idle" : "closed";
    case "ed-card":
      return state.role === "viewer" ? "not-set-up" : "ed-card";
    case "done":
      return "passage";
    case "referred":
      return "wait";
    case "document":
    case "card":
    case "fingerprints":
    case "face":
    case "printing":
    case "take-card":
    case "passage":
      return gate.step;
    default:
      return "wait";
  }
}

function showResult(recordId, admitted, guidance, extra = {}) {
  state.seenRecordId = recordId;
  if (state.result && state.result.recordId === recordId) return;
  state.result = {
    recordId,
    admitted,
    guidance: guidance || "",
    guidanceKind: extra.guidanceKind || null,
    notices: extra.notices || [],
    until: Date.now() + RESULT_MS,
  };
  setTimeout(render, RESULT_MS + 50);
}

function guidanceText(result) {
  const key = GUIDANCE_KIND_KEYS[result.guidanceKind] || GUIDANCE_KEYS[result.guidance];
  if (key) return t(key);
  // An unknown sentence from the gate: shown as it is (it is guidance, never grounds).
  return result.guidance || t("guidance.see_officer");
}

function applyGate(gate) {
  state.gate = gate;
  const last = gate.last;
  if (state.seenRecordId === undefined) {
    // Whatever finished before this page loaded is not this traveler's result.
    state.seenRecordId = last ? last.record_id : null;
  } else if (last && last.record_id !== state.seenRecordId) {
    showResult(last.record_id, last.outcome?.outcome === "admitted", last.guidance, {
      notices: last.notices,
      guidanceKind: last.guidance_kind,
    });
  }
}

// ------------------------------------------------------------------ rendering

function render() {
  const gate = state.gate;
  const screen = screenFor(gate);
  const previous = state.screen;
  state.screen = screen;
  if (gate && gate.lane) document.body.dataset.lane = gate.lane;

  // A new traveler starts in their own (or the default) language.
  if (screen === "idle" && previous !== "idle" && previous !== null) state.langChosen = false;
  const transaction = (gate && gate.transaction) || null;
  if (state.langChosen && transaction) {
    if (state.langTransaction === null) state.langTransaction = transaction;
    else if (state.langTransaction !== transaction) state.langChosen = false;
  }
  if (!state.result && !state.langChosen) {
    const wanted = travelerLanguage(gate) || state.defaultLang;
    if (wanted !== state.lang) setLanguage(wanted);
  }

  for (const section of $$("[data-screen]")) section.hidden = section.dataset.screen !== screen;
  document.body.dataset.view = screen;

  if (screen === "ed-card") prepareEdCard(gate);
  if (screen === "result-referred") $("#guidance").textContent = guidanceText(state.result);
  if (screen === "result-admitted") {
    $("#notice-rewrite-card").hidden = !state.result.notices.includes("rewrite-card");
  }
  renderProgress(screen, gate);
  $("#connection").hidden = state.reachable;
}

function renderProgress(screen, gate) {
  const progress = $("#progress");
  const stage = SCREEN_STAGE[screen];
  progress.hidden = !stage;
  if (!stage) return;
  const stages = STAGES[gate?.lane === "exit" ? "exit" : "entry"];
  const index = stage === "done" ? stages.length : stages.indexOf(stage);
  for (const item of $$("li", progress)) {
    const position = stages.indexOf(item.dataset.progress);
    item.classList.toggle("done", position >= 0 && position < index);
    item.classList.toggle("current", position === index);
    if (position === index) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

// ------------------------------------------------------------------ the ED card

function prepareEdCard(gate) {
  // Filled once per transaction, from the gate's card (which may arrive just after the
  // step itself; with nothing pre-entered it is an empty card, never absent).
  if (state.edTransaction === gate.transaction || !gate.ed_card) return;
  state.edTransaction = gate.transaction;
  state.submitting = false;
  fillForm(gate.ed_card);
  showFieldErrors(gate.ed_card_errors || []);
  $("#ed-send-failed").hidden = true;
  $("#ed-confirm").disabled = false;
  $("#ed-confirm").textContent = t("ed.confirm");
  window.scrollTo(0, 0);
}

function setChoice(group, value) {
  for (const button of $$(".choice", group)) {
    button.setAttribute("aria-checked", String(value !== null && button.dataset.value === value));
  }
}

function choiceValue(group) {
  const checked = $('.choice[aria-checked="true"]', group);
  return checked ? checked.dataset.value : null;
}

function fillForm(card) {
  for (const name of TEXT_FIELDS) $(`#ed-${name}`).value = card[name] ?? "";
  $("#ed-arrival_date").value = card.arrival_date ?? "";
  const days = card.length_of_stay_days;
  $("#ed-length_of_stay_days").value = days ? String(days) : "";
  const purpose = (card.purpose ?? "").trim();
  const group = $("#ed-purpose");
  const known = $$(".choice", group).find(
    (b) => b.dataset.value && b.dataset.value.toLowerCase() === purpose.toLowerCase(),
  );
  if (known) setChoice(group, known.dataset.value);
  else if (purpose) setChoice(group, "");
  else setChoice(group, null);
  $("#ed-purpose-other").value = known ? "" : purpose;
  showOtherPurpose();
  for (const question of QUESTIONS) {
    const answer = card[question];
    setChoice($(`[data-field="${question}"] .choice-row`), answer === true ? "true" : answer === false ? "false" : null);
  }
}

function showOtherPurpose() {
  const other = choiceValue($("#ed-purpose")) === "";
  $("#ed-purpose-other").hidden = !other;
  $("#ed-purpose-other-label").hidden = !other;
}

/** The form as torii-core's `EdCard` (field order as the daemon echoes it). */
function readForm() {
  const text = (name) => $(`#ed-${name}`).value.trim();
  const purposeChoice = choiceValue($("#ed-purpose"));
  const days = Number.parseInt($("#ed-length_of_stay_days").value, 10);
  const answer = (question) => {
    const value = choiceValue($(`[data-field="${question}"] .choice-row`));
    return value === null ? null : value === "true";
  };
  return {
    flight: text("flight").toUpperCase(),
    arrival_date: $("#ed-arrival_date").value || null,
    address_in_japan: text("address_in_japan"),
    phone_in_japan: text("phone_in_japan"),
    purpose: purposeChoice === "" ? $("#ed-purpose-other").value.trim() : (purposeChoice ?? ""),
    // Out of range values go to the gate as they are (clamped to its integer type) so it
    // names the problem; nothing is silently corrected.
    length_of_stay_days: Number.isFinite(days) ? Math.min(Math.max(days, 0), 65535) : 0,
    occupation: text("occupation"),
    deported_before: answer("deported_before"),
    convicted_before: answer("convicted_before"),
    carrying_prohibited_items: answer("carrying_prohibited_items"),
    carrying_firearms: answer("carrying_firearms"),
  };
}

function sameCard(a, b) {
  if (!a || !b) return false;
  return Object.keys(b).every((key) => (a[key] ?? null) === (b[key] ?? null));
}

function showFieldErrors(errors) {
  state.edErrors = errors;
  const byField = new Map();
  for (const error of errors) {
    const texts = byField.get(error.field) || [];
    const key = PROBLEM_KEYS[error.problem] || "err.check";
    if (!texts.includes(t(key))) texts.push(t(key));
    byField.set(error.field, texts);
  }
  for (const field of $$("#ed-form [data-field]")) {
    const name = field.dataset.field;
    const texts = byField.get(name);
    const message = $(`#err-${name}`);
    field.classList.toggle("invalid", Boolean(texts));
    for (const input of $$("input", field)) {
      if (texts) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    if (message) {
      message.textContent = texts ? texts.join(" ") : "";
      message.hidden = !texts;
    }
  }
  $("#ed-summary").hidden = errors.length === 0;
}

async function submitEdCard(event) {
  event.preventDefault();
  if (state.submitting) return;
  const card = readForm();
  const transaction = state.gate && state.gate.transaction;
  const button = $("#ed-confirm");
  state.submitting = true;
  button.disabled = true;
  button.textContent = t("ed.checking");
  $("#ed-send-failed").hidden = true;
  try {
    await postJson("/api/v1/gate/ed-card", card);
    // The gate checks the card asynchronously: it either moves on to the fingerprints
    // (a step-changed event) or stays on the step and names the fields to fix.
    const deadline = Date.now() + ED_VERDICT_MS;
    while (Date.now() < deadline) {
      await sleep(150);
      const gate = await getJson("/api/v1/gate/personal");
      applyGate(gate);
      if (gate.step !== "ed-card" || gate.transaction !== transaction) break;
      if (gate.ed_card_errors && gate.ed_card_errors.length && sameCard(gate.ed_card, card)) {
        showFieldErrors(gate.ed_card_errors);
        const first = $("#ed-form .invalid");
        if (first) first.scrollIntoView({ block: "center" });
        break;
      }
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      await refresh();
    } else {
      $("#ed-send-failed").hidden = false;
    }
  } finally {
    state.submitting = false;
    button.disabled = false;
    button.textContent = t("ed.confirm");
    render();
  }
}

// ------------------------------------------------------------------ plumbing

let refreshing = null;
let refreshAgain = false;

/** Reads the gate's state (coalescing bursts of events into one request at a time). */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        const personal = state.role === "kiosk" || state.role === "operator";
        let gate;
        try {
          gate = await getJson(personal ? "/api/v1/gate/personal" : "/api/v1/gate");
        } catch (error) {
          if (personal && error instanceof ApiError && (error.status === 401 || error.status === 403)) {
            state.role = "viewer";
            gate = await getJson("/api/v1/gate");
          } else {
            throw error;
          }
        }
        state.reachable = true;
        applyGate(gate);
      } catch {
        state.reachable = false;
      }
      render();
    } while (refreshAgain);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

function onEvent(name, data) {
  if (name === "transaction-finished" && data.record_id) {
    showResult(data.record_id, Boolean(data.admitted), data.guidance, {
      guidanceKind: data.guidance_kind,
      notices: data.notices,
    });
  }
  if (name === "step-changed" && state.gate && data.step) {
    // Show the new step at once; the full state follows.
    state.gate = { ...state.gate, step: data.step, transaction: data.transaction ?? null };
    render();
  }
  refresh();
}

async function poll() {
  for (;;) {
    await sleep(state.live && state.reachable ? POLL_LIVE_MS : POLL_OFFLINE_MS);
    await refresh();
  }
}

let idleLanguageTimer = null;

function wireControls() {
  for (const button of $$(".lang-button")) {
    button.addEventListener("click", () => {
      state.langChosen = true;
      // On the result screen the choice is the departing traveler's, not the next one's.
      state.langTransaction = state.result
        ? state.result.recordId
        : (state.gate && state.gate.transaction) || null;
      setLanguage(button.dataset.lang);
      clearTimeout(idleLanguageTimer);
      idleLanguageTimer = setTimeout(() => {
        if (state.screen === "idle") {
          state.langChosen = false;
          render();
        }
      }, IDLE_LANGUAGE_MS);
    });
  }
  for (const group of $$("#ed-form .choice-row")) {
    group.addEventListener("click", (event) => {
      const button = event.target.closest(".choice");
      if (!button) return;
      setChoice(group, button.dataset.value);
      if (group.id === "ed-purpose") {
        showOtherPurpose();
        if (button.dataset.value === "") $("#ed-purpose-other").focus();
      }
    });
  }
  $("#ed-form").addEventListener("submit", submitEdCard);
}

async function main() {
  state.defaultLang = browserLanguage();
  await Promise.all([loadLanguage("en"), setLanguage(state.defaultLang)]);
  wireControls();
  const session = await startSession();
  state.role = session.role;
  getJson("/api/v1/status")
    .then((status) => {
      $("#gate-id").textContent = status.gate_id || "";
    })
    .catch(() => {});
  subscribe(onEvent, (live) => {
    state.live = live;
    if (live) refresh();
  });
  await refresh();
  poll();
}

main();
