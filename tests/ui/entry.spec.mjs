// The kiosk and the officer console in a real browser (headless Chromium driven by
// playwright-core), against a whole simulated gate started by tests/ui/run: the real
// toriid, the real .so sim drivers, the device simulators driven through their control
// API the way a traveler would act (passport on the reader, card into the printer…).
//
// The walk (entry lane, scenario suite.toml):
//   - console with the operator token: controls; without a token: read-only;
//   - kiosk: the token leaves the address bar, the idle screen, WCAG-minded sizes and
//     contrast, the five languages, the default language from the browser;
//   - the officer takes the gate out of service (the kiosk closes live) and back;
//   - alice: passport → card → ED card (flight cleared: "required"; "NH": wrong format;
//     "JL5": accepted) → fingers → face → card printed and taken → "Welcome to Japan";
//     the record central receives carries the corrected flight;
//   - petra: someone else's fingers → referred: the kiosk shows guidance only (in two
//     languages), the console the reason code FP_MISMATCH with its recommended action;
//   - quinn: a second person in the lane → referred with a tailgating alarm, which the
//     officer acknowledges on the console (checked through the API).
// Screenshots of each step go to $ARTIFACTS (target/ui-artifacts).
//
// A plain Node script (no test runner): steps run in order, the first failure stops
// the walk with a screenshot of every page and a non-zero exit.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/ui/run)`);
  return value;
};
const BASE = env("TORII_URL");
const CONTROL = env("SIM_CONTROL");
const CENTRAL_CONTROL = env("CENTRAL_CONTROL");
const KIOSK_TOKEN = env("KIOSK_TOKEN");
const OPERATOR_TOKEN = env("OPERATOR_TOKEN");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** How long the gate may take to show a step. */
const PATIENCE = 20_000;

const LANGUAGES = ["ja", "en", "zh-Hans", "zh-Hant", "ko"];
const i18n = Object.fromEntries(
  LANGUAGES.map((lang) => [
    lang,
    JSON.parse(fs.readFileSync(path.join(root, "daemon/toriid/web/i18n", `${lang}.json`), "utf8")),
  ]),
);
const en = i18n.en;

// ------------------------------------------------------------------ helpers

let shots = 0;
async function screenshot(page, name) {
  shots += 1;
  const file = path.join(ARTIFACTS, `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

/** A control action on the simulated devices (what a traveler or the building does). */
async function sim(action, fields = {}) {
  const response = await fetch(`${CONTROL}/v1/actions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action, ...fields }),
  });
  const answer = await response.json();
  assert.ok(answer.ok, `sim ${action} ${JSON.stringify(fields)}: ${JSON.stringify(answer)}`);
  return answer.result;
}

async function simState() {
  const answer = await (await fetch(`${CONTROL}/v1/state`)).json();
  return answer.result ?? answer;
}

/** The daemon's API with a browser context's session cookie (and the CSRF header). */
async function api(context, method, url, body) {
  const response = await context.request.fetch(`${BASE}${url}`, {
    method,
    headers: { "X-Torii-Request": "1", "Content-Type": "application/json" },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  return { status: response.status(), json };
}

async function until(what, probe, timeout = PATIENCE) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits for the kiosk to show `screen` (a `data-screen` section). */
async function kioskShows(page, screen) {
  await page.locator(`[data-screen="${screen}"]`).waitFor({ state: "visible", timeout: PATIENCE });
}

async function visibleHeading(page) {
  return (await page.locator("[data-screen]:not([hidden]) h1:visible").first().textContent()).trim();
}

/**
 * Kiosk ergonomics on what is visible now: body text >= 28px, every button at least
 * 64px tall, and WCAG AA contrast (4.5:1) for every visible text element against its
 * effective background.
 */
async function checkKioskErgonomics(page, where) {
  const problems = await page.evaluate(() => {
    const out = [];
    const parse = (color) => {
      const m = color.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }) => {
      const lin = (c) => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const background = (element) => {
      for (let e = element; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const visible = (e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
    };
    const bodySize = parseFloat(getComputedStyle(document.body).fontSize);
    if (bodySize < 28) out.push(`body font-size ${bodySize}px < 28px`);
    for (const button of document.querySelectorAll("button")) {
      if (!visible(button)) continue;
      const h = button.getBoundingClientRect().height;
      if (h < 64) out.push(`button "${button.textContent.trim()}" is ${h}px tall`);
    }
    for (const e of document.querySelectorAll("h1, p, label, button, li, span, input, legend")) {
      if (!visible(e) || !e.textContent.trim() && e.tagName !== "INPUT") continue;
      const style = getComputedStyle(e);
      const fg = parse(style.color);
      const bg = background(e);
      const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(style.fontSize);
      if (size < 28 && e.tagName !== "INPUT") {
        out.push(`<${e.tagName.toLowerCase()}> "${e.textContent.trim().slice(0, 30)}" is ${size}px`);
      }
      if (ratio < 4.5) {
        out.push(`<${e.tagName.toLowerCase()}> "${e.textContent.trim().slice(0, 30)}" contrast ${ratio.toFixed(2)}`);
      }
    }
    return out;
  });
  assert.deepEqual(problems, [], `kiosk ergonomics (${where})`);
}

// ------------------------------------------------------------------ the walk

const steps = [];
function step(name, run) {
  steps.push({ name, run });
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
// Each context is a fresh profile (cookies, storage): the kiosk's browser, an officer's
// and an unauthenticated viewer's.
const kioskContext = await browser.newContext({ viewport: { width: 1280, height: 1024 }, locale: "en-US" });
const officerContext = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "en-US" });
const viewerContext = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "en-US" });
const kiosk = await kioskContext.newPage();
const officer = await officerContext.newPage();
const viewer = await viewerContext.newPage();
const pages = { kiosk, officer, viewer };

// Scripts must not fail, and nothing may be blocked by the Content-Security-Policy.
const pageErrors = [];
for (const [name, page] of Object.entries(pages)) {
  page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content.Security.Policy|Refused to/i.test(message.text())) {
      pageErrors.push(`${name}: ${message.text()}`);
    }
  });
}

const record = {};

step("console with the operator token: controls, devices, token gone from the address bar", async () => {
  await officer.goto(`${BASE}/console#token=${OPERATOR_TOKEN}`);
  await until("the operator role", async () => (await officer.textContent("#role")) === "operator");
  assert.equal(new URL(officer.url()).hash, "", "the token stays out of the address bar");
  assert.ok(await officer.isVisible("#controls"));
  assert.ok(await officer.isVisible('[data-mode="out-of-service"]'));
  await until("seven devices", async () => (await officer.locator("#devices tr").count()) === 7);
  await until("live events", async () => (await officer.textContent("#live")) === "live");
  assert.equal(await officer.getAttribute("#step", "data-step"), "idle");
  const who = await api(officerContext, "GET", "/api/v1/whoami");
  assert.equal(who.json.role, "operator");
  await screenshot(officer, "console-operator");
});

step("console without a token: read-only, controls hidden, and refused by the daemon", async () => {
  await viewer.goto(`${BASE}/console`);
  await until("the viewer role", async () => (await viewer.textContent("#role")) === "viewer");
  await until("devices", async () => (await viewer.locator("#devices tr").count()) === 7);
  assert.equal(await viewer.isVisible("#controls"), false);
  assert.equal(await viewer.isVisible('[data-mode="out-of-service"]'), false);
  assert.ok(await viewer.isVisible("#read-only-note"));
  const refused = await api(viewerContext, "POST", "/api/v1/gate/mode", { mode: "out-of-service" });
  assert.ok([401, 403].includes(refused.status), `a viewer changing the mode: HTTP ${refused.status}`);
  await screenshot(viewer, "console-viewer");
});

step("kiosk: session from the fragment, idle screen with the passport pictogram", async () => {
  await kiosk.goto(`${BASE}/kiosk#token=${KIOSK_TOKEN}`);
  await kioskShows(kiosk, "idle");
  assert.equal(new URL(kiosk.url()).hash, "", "the token stays out of the address bar");
  assert.equal(await visibleHeading(kiosk), en["step.idle.title"]);
  assert.ok(await kiosk.locator('[data-screen="idle"] svg.pictogram').isVisible());
  const who = await api(kioskContext, "GET", "/api/v1/whoami");
  assert.equal(who.json.role, "kiosk");
  // The kiosk may not command the gate.
  const refused = await api(kioskContext, "POST", "/api/v1/gate/mode", { mode: "maintenance" });
  assert.equal(refused.status, 403);
  await checkKioskErgonomics(kiosk, "idle");
  await screenshot(kiosk, "kiosk-idle");
});

step("kiosk: five languages, each named in its own language", async () => {
  for (const lang of LANGUAGES) {
    await kiosk.click(`.lang-button[data-lang="${lang}"]`);
    await until(`lang=${lang}`, async () => (await kiosk.getAttribute("html", "lang")) === lang);
    assert.equal(await visibleHeading(kiosk), i18n[lang]["step.idle.title"], lang);
    assert.equal(
      (await kiosk.textContent('[data-screen="idle"] .lead')).trim(),
      i18n[lang]["step.idle.body"],
    );
    assert.equal(await kiosk.getAttribute(`.lang-button[data-lang="${lang}"]`, "aria-pressed"), "true");
    await checkKioskErgonomics(kiosk, `idle, ${lang}`);
    await screenshot(kiosk, `kiosk-idle-${lang}`);
  }
  // Back to English for alice (the traveler's choice holds for their transaction).
  await kiosk.click('.lang-button[data-lang="en"]');
});

step("kiosk: the default language follows the browser (the gate's view has no nationality)", async () => {
  for (const [locale, lang] of [
    ["ja-JP", "ja"],
    ["zh-TW", "zh-Hant"],
    ["ko-KR", "ko"],
    ["de-DE", "en"],
  ]) {
    const context = await browser.newContext({ locale });
    const page = await context.newPage();
    await page.goto(`${BASE}/kiosk`);
    await until(`${locale} → ${lang}`, async () => (await page.getAttribute("html", "lang")) === lang);
    await kioskShows(page, "idle");
    assert.equal(await visibleHeading(page), i18n[lang]["step.idle.title"]);
    await context.close();
  }
});

step("officer: out of service closes the kiosk live, in service reopens it", async () => {
  await officer.click('[data-mode="out-of-service"]');
  await kioskShows(kiosk, "closed");
  const gate = await api(officerContext, "GET", "/api/v1/gate");
  assert.equal(gate.json.mode, "out-of-service");
  await until("the console's mode badge", async () => (await officer.getAttribute("#mode", "data-mode")) === "out-of-service");
  await screenshot(kiosk, "kiosk-closed");
  await screenshot(officer, "console-out-of-service");
  await officer.click('[data-mode="in-service"]');
  await kioskShows(kiosk, "idle");
  assert.equal((await api(officerContext, "GET", "/api/v1/gate")).json.mode, "in-service");
});

step("officer: a door command takes two taps", async () => {
  const exitDoor = async () => (await simState()).devices["lane-controller"].state.exit_door;
  const lock = officer.locator('[data-door="exit"][data-command="lock"]');
  await lock.click();
  assert.match(await lock.textContent(), /Confirm/);
  assert.notEqual(await exitDoor(), "locked", "the first tap only arms the button");
  await lock.click();
  await until("the exit door locked", async () => (await exitDoor()) === "locked");
  const close = officer.locator('[data-door="exit"][data-command="close"]');
  await close.click();
  await close.click();
  await until("the exit door closed", async () => (await exitDoor()) === "closed");
});

step("alice: passport on the reader → the kiosk asks for the card", async () => {
  await sim("reset");
  await sim("enter-lane");
  await sim("present-passport", { traveler: "alice" });
  await kioskShows(kiosk, "card");
  assert.equal(await visibleHeading(kiosk), en["step.card.title"]);
  assert.equal(await kiosk.getAttribute('.progress li[data-progress="card"]', "aria-current"), "step");
  assert.match(await kiosk.getAttribute('.progress li[data-progress="document"]', "class"), /done/);
  // The console follows the step live.
  await until("the console's live step", async () => (await officer.getAttribute("#step", "data-step")) === "card");
  await screenshot(kiosk, "alice-card");
});

step("alice: card into the printer → her pre-entered ED card, editable", async () => {
  await sim("insert-card", { traveler: "alice" });
  await kioskShows(kiosk, "ed-card");
  assert.equal(await kiosk.inputValue("#ed-flight"), "NH212");
  assert.match(await kiosk.inputValue("#ed-address_in_japan"), /Konan/);
  assert.equal(await kiosk.inputValue("#ed-length_of_stay_days"), "10");
  assert.equal(await kiosk.getAttribute('#ed-purpose [data-value="tourism"]', "aria-checked"), "true");
  assert.equal(
    await kiosk.getAttribute('[data-field="carrying_firearms"] [data-value="false"]', "aria-checked"),
    "true",
  );
  await checkKioskErgonomics(kiosk, "ED card");
  await screenshot(kiosk, "alice-ed-card");
});

step("alice: clears the flight and confirms → the gate's error shows next to the field", async () => {
  await kiosk.fill("#ed-flight", "");
  await kiosk.click("#ed-confirm");
  const error = kiosk.locator("#err-flight");
  await error.waitFor({ state: "visible", timeout: PATIENCE });
  assert.equal((await error.textContent()).trim(), en["err.required"]);
  assert.ok(await kiosk.isVisible("#ed-summary"));
  assert.equal(await kiosk.getAttribute("#ed-flight", "aria-invalid"), "true");
  const personal = await api(kioskContext, "GET", "/api/v1/gate/personal");
  assert.deepEqual(
    personal.json.ed_card_errors.map((e) => e.field),
    ["flight"],
    "the daemon marked the flight",
  );
  await screenshot(kiosk, "alice-ed-card-required");
});

step("alice: a flight number without its number → the format error", async () => {
  await kiosk.fill("#ed-flight", "NH");
  await kiosk.click("#ed-confirm");
  await until("the format error", async () => (await kiosk.textContent("#err-flight")).trim() === en["err.flight"]);
  // The error follows the language.
  await kiosk.click('.lang-button[data-lang="ja"]');
  await until("the error in Japanese", async () => (await kiosk.textContent("#err-flight")).trim() === i18n.ja["err.flight"]);
  await screenshot(kiosk, "alice-ed-card-format-ja");
  await kiosk.click('.lang-button[data-lang="en"]');
});

step("alice: corrects the flight to JL5 and confirms → fingerprints", async () => {
  await kiosk.fill("#ed-flight", "JL5");
  await kiosk.click("#ed-confirm");
  await kioskShows(kiosk, "fingerprints");
  assert.equal(await visibleHeading(kiosk), en["step.fingerprints.title"]);
  await screenshot(kiosk, "alice-fingerprints");
});

step("alice: her two fingers on the sensor → the face photo", async () => {
  await sim("place-fingers", { traveler: "alice", mode: "genuine" });
  await kioskShows(kiosk, "face");
  await screenshot(kiosk, "alice-face");
});

step("alice: looks at the camera → the landing record is printed, she takes her card", async () => {
  await sim("look-at-camera", { traveler: "alice" });
  await kioskShows(kiosk, "take-card");
  await screenshot(kiosk, "alice-take-card");
  await sim("take-card");
  await kioskShows(kiosk, "passage");
  assert.equal(await visibleHeading(kiosk), en["result.welcome.title"]);
  await screenshot(kiosk, "alice-passage");
});

step("alice: walks through → \"Welcome to Japan\"", async () => {
  await sim("walk-through");
  await kioskShows(kiosk, "result-admitted");
  assert.equal(await visibleHeading(kiosk), en["result.welcome.title"]);
  await screenshot(kiosk, "alice-welcome");
});

step("alice's record: admitted, the corrected flight, the landing line on her card", async () => {
  const list = await until("alice's transaction", async () => {
    const answer = await api(officerContext, "GET", "/api/v1/transactions?limit=5");
    return answer.json?.length ? answer.json : null;
  });
  assert.equal(list[0].outcome.outcome, "admitted");
  record.alice = list[0].record_id;
  // The full record as central immigration received it from the gate's outbox (the
  // gate keeps it only until central acknowledged it).
  const received = await until("alice's record at central", async () => {
    const answer = await (await fetch(`${CENTRAL_CONTROL}/control/records`)).json();
    return answer.records.find((r) => r.record_id === record.alice);
  });
  const full = typeof received.record === "string" ? JSON.parse(received.record) : received.record;
  assert.equal(full.outcome.outcome, "admitted");
  assert.equal(full.ed_card.flight, "JL5", "the corrected flight is on the record");
  assert.match(full.printed_line, /Temporary Visitor \(90 days\)/);
  const card = (await simState()).cards.alice;
  assert.ok(JSON.stringify(card).includes(full.printed_line), "the line is on the card's back");
  await until("the console's transaction row", async () =>
    (await officer.locator(`#transactions tr[data-record="${record.alice}"]`).count()) === 1,
  );
});

step("petra: someone else's fingers → referred, the kiosk shows guidance only", async () => {
  await sim("reset");
  await sim("enter-lane");
  await sim("present-passport", { traveler: "petra" });
  await kioskShows(kiosk, "card");
  await sim("insert-card", { traveler: "petra" });
  await kioskShows(kiosk, "ed-card");
  assert.equal(await kiosk.inputValue("#ed-flight"), "LO79");
  await kiosk.click("#ed-confirm");
  await kioskShows(kiosk, "fingerprints");
  await sim("place-fingers", { traveler: "petra", mode: "impostor" });
  await kioskShows(kiosk, "result-referred");
  assert.equal((await kiosk.textContent("#guidance")).trim(), en["guidance.see_officer"]);
  const shown = await kiosk.locator("body").innerText();
  for (const grounds of ["FP_MISMATCH", "did not match", "fingerprint"]) {
    assert.ok(!shown.toLowerCase().includes(grounds.toLowerCase()), `the kiosk shows "${grounds}"`);
  }
  await screenshot(kiosk, "petra-referred");
  await kiosk.click('.lang-button[data-lang="zh-Hans"]');
  await until("the guidance in Chinese", async () =>
    (await kiosk.textContent("#guidance")).trim() === i18n["zh-Hans"]["guidance.see_officer"],
  );
  await screenshot(kiosk, "petra-referred-zh-Hans");
});

step("console: petra's referral with its reason code and recommended action", async () => {
  const row = officer.locator('#referrals tr[data-reason="FP_MISMATCH"]');
  await row.first().waitFor({ state: "visible", timeout: PATIENCE });
  const codes = await api(officerContext, "GET", "/api/v1/reason-codes");
  const mismatch = codes.json.find((c) => c.code === "FP_MISMATCH");
  const cells = await row.first().locator("td").allTextContents();
  assert.equal(cells[1], "FP_MISMATCH");
  assert.equal(cells[2], mismatch.description);
  assert.equal(cells[3], mismatch.recommended_action);
  assert.match(await officer.textContent("#last-outcome"), /FP_MISMATCH/);
  await screenshot(officer, "console-referral");
});

step("quinn: a second person in the lane → referred, tailgating alarm on the console", async () => {
  await sim("reset");
  await sim("enter-lane");
  await sim("present-passport", { traveler: "quinn" });
  await kioskShows(kiosk, "card");
  await sim("insert-card", { traveler: "quinn" });
  await kioskShows(kiosk, "ed-card");
  await kiosk.click("#ed-confirm");
  await kioskShows(kiosk, "fingerprints");
  await sim("place-fingers", { traveler: "quinn", mode: "genuine" });
  await kioskShows(kiosk, "face");
  await sim("second-person");
  await sim("look-at-camera", { traveler: "quinn" });
  await kioskShows(kiosk, "result-referred");
  assert.equal((await kiosk.textContent("#guidance")).trim(), en["guidance.see_officer"]);
  await officer.locator("#alarm").waitFor({ state: "visible", timeout: PATIENCE });
  assert.equal(await officer.getAttribute("#alarm", "data-kind"), "tailgating");
  await officer.locator('#referrals tr[data-reason="MULTI_PERSON"]').first().waitFor({ timeout: PATIENCE });
  assert.ok((await api(officerContext, "GET", "/api/v1/gate")).json.alarm, "the gate has an alarm");
  await screenshot(kiosk, "quinn-referred");
  await screenshot(officer, "console-alarm");
});

step("officer: acknowledges the alarm → cleared (checked through the API)", async () => {
  await officer.click("#alarm-ack");
  await officer.locator("#alarm").waitFor({ state: "hidden", timeout: PATIENCE });
  const gate = await api(officerContext, "GET", "/api/v1/gate");
  assert.equal(gate.json.alarm, null);
  await screenshot(officer, "console-alarm-acknowledged");
  await sim("reset");
});

step("no script errors and nothing blocked by the Content-Security-Policy", async () => {
  assert.deepEqual(pageErrors, []);
});

// ------------------------------------------------------------------ run

let failed = 0;
const started = Date.now();
console.log(`TAP version 13\n1..${steps.length}`);
for (const [index, { name, run }] of steps.entries()) {
  const t0 = Date.now();
  try {
    await run();
    console.log(`ok ${index + 1} - ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    failed = index + 1;
    console.log(`not ok ${index + 1} - ${name}`);
    console.log(`  ---\n  ${String(error.stack || error).split("\n").join("\n  ")}\n  ...`);
    for (const [pageName, page] of Object.entries(pages)) {
      await screenshot(page, `FAILED-${pageName}`).catch(() => {});
    }
    break;
  }
}
await browser.close();
console.log(
  failed
    ? `# FAILED at step ${failed} of ${steps.length}; screenshots in ${ARTIFACTS}`
    : `# all ${steps.length} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s; ${shots} screenshots in ${ARTIFACTS}`,
);
process.exit(failed ? 1 : 0);
