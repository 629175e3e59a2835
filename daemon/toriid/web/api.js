// The pages' access to toriid: the session (token from the URL fragment), JSON calls,
// and the live event stream. Shared by kiosk.js and console.js.
//
// Nothing the daemon returns is ever interpreted as HTML: the pages set textContent only.

/** Every state-changing request carries this header (the daemon refuses those without). */
const REQUEST_HEADER = { "X-Torii-Request": "1" };

/** An API answer that was not 2xx. */
export class ApiError extends Error {
  constructor(path, status, body) {
    super(`${path}: HTTP ${status}${body && body.message ? ` (${body.message})` : ""}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Starts the page's session. A page opened as `/kiosk#token=…` or `/console#token=…`
 * posts the token once to `/api/v1/session` (the daemon answers with an HttpOnly cookie)
 * and removes it from the address bar and history first, so it is never left visible,
 * bookmarked or sent elsewhere. Then asks who we are.
 *
 * @returns {Promise<{role: string, name: string|null, error: string|null}>}
 */
export async function startSession() {
  let error = null;
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (location.hash) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  if (token) {
    try {
      const response = await fetch("/api/v1/session", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", ...REQUEST_HEADER },
        body: JSON.stringify({ token }),
      });
      if (!response.ok) error = `token refused (HTTP ${response.status})`;
    } catch (e) {
      error = `cannot reach toriid: ${e.message}`;
    }
  }
  return { ...(await whoami()), error };
}

/** The caller's role as the daemon sees it (`viewer` when it cannot say). */
export async function whoami() {
  try {
    const who = await getJson("/api/v1/whoami");
    return { role: typeof who.role === "string" ? who.role : "viewer", name: who.name ?? null };
  } catch {
    return { role: "viewer", name: null };
  }
}

async function body(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

export async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  const json = await body(response);
  if (!response.ok) throw new ApiError(path, response.status, json);
  return json;
}

/** POSTs `payload` as JSON; resolves with the answer's JSON, throws ApiError otherwise. */
export async function postJson(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    cache: "no-store",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...REQUEST_HEADER },
    body: JSON.stringify(payload ?? {}),
  });
  const json = await body(response);
  if (!response.ok) throw new ApiError(path, response.status, json);
  return json;
}

/** The SSE event names `GET /api/v1/events` sends. */
export const EVENT_NAMES = [
  "step-changed",
  "mode-changed",
  "interlocks-changed",
  "transaction-finished",
  "alarm-raised",
  "alarm-cleared",
  "device-state-changed",
];

/**
 * Subscribes to the gate's events. `onEvent(name, data)` gets each event's parsed JSON;
 * `onConnection(live)` is told when the stream opens or drops (the browser reconnects by
 * itself; pages also poll slowly, so a missed event only delays the screen).
 */
export function subscribe(onEvent, onConnection) {
  if (typeof EventSource === "undefined") {
    onConnection(false);
    return () => {};
  }
  const source = new EventSource("/api/v1/events", { withCredentials: true });
  source.onopen = () => onConnection(true);
  source.onerror = () => onConnection(false);
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (message) => {
      let data = {};
      try {
        data = message.data ? JSON.parse(message.data) : {};
      } catch {
        data = {};
      }
      onEvent(name, data);
    });
  }
  return () => source.close();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
