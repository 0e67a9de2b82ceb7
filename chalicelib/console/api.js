// The console's client of the public Zaqar v2 REST API: who is asking, one request, its errors,
// and the poller that keeps views live (with backoff when the service does not answer).

export const PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch";
const CREDENTIALS_KEY = "zaqar-console-credentials";
const CLIENT_KEY = "zaqar-console-client-id";
const TIMEOUT_MS = 15000;

/** A random (version 4) UUID; crypto.randomUUID exists only in secure contexts, getRandomValues everywhere. */
export function uuid4() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** This browser session's Client-ID (Zaqar wants one per client instance). */
export function clientId() {
  let id = sessionStorage.getItem(CLIENT_KEY);
  if (!id) {
    id = uuid4();
    sessionStorage.setItem(CLIENT_KEY, id);
  }
  return id;
}

/** An error as the API states it: Zaqar's {title, description}, or what stood in for it. */
export class ApiError extends Error {
  constructor(status, title, description) {
    super(`${title}: ${description}`);
    this.status = status;
    this.title = title;
    this.description = description;
  }
}

// -- credentials ------------------------------------------------------------------------------
// {mode: "project", project} (noauth), {mode: "token", token[, project]} (Keystone), or
// {mode: "signed", signed: {project, paths, methods, expires, signature}} (a pre-signed URL, from /share).

export function loadCredentials() {
  try {
    const found = JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) || "null");
    return found && typeof found === "object" ? found : null;
  } catch {
    return null;
  }
}

export function saveCredentials(credentials) {
  sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));
}

export function forgetCredentials() {
  sessionStorage.removeItem(CREDENTIALS_KEY);
}

const SIGNED_KEYS = ["project", "paths", "methods", "expires", "signature"];

/** A pre-signed grant from the JSON /share answers, or from a console URL's query; throws ApiError if it is not one. */
export function parseSigned(source) {
  let value = source;
  if (typeof source === "string") {
    try {
      value = JSON.parse(source);
    } catch {
      throw new ApiError(0, "Not a pre-signed URL",
        "Paste the JSON that POST /v2/queues/{queue}/share answered (project, paths, methods, expires, signature).");
    }
  }
  const missing = SIGNED_KEYS.filter((key) => value == null || value[key] == null || value[key] === "");
  if (missing.length) {
    throw new ApiError(0, "Not a pre-signed URL", `It lacks ${missing.join(", ")}.`);
  }
  const list = (item) => (Array.isArray(item) ? item : String(item).split(",")).map((s) => String(s).trim()).filter(Boolean);
  return {project: String(value.project), paths: list(value.paths), methods: list(value.methods).map((m) => m.toUpperCase()),
    expires: String(value.expires), signature: String(value.signature)};
}

/** The queues a pre-signed grant names (its paths are /v2/queues/<queue>/<resource>). */
export function signedQueues(signed) {
  const names = new Set();
  for (const path of signed.paths) {
    const found = /^\/v2\/queues\/([^/]+)/.exec(path);
    if (found) names.add(decodeURIComponent(found[1]));
  }
  return [...names].sort();
}

/** Whether a grant covers a request, as the service decides (a path covers itself and what is below it). */
export function signedAllows(signed, method, path) {
  const bare = "/" + path.replace(/^\//, "").split("?")[0];
  return signed.methods.includes(method.toUpperCase())
    && signed.paths.some((allowed) => bare === allowed || bare.startsWith(allowed.replace(/\/$/, "") + "/"));
}

export function headersFor(credentials) {
  const headers = {"Client-ID": clientId(), "Accept": "application/json"};
  if (credentials.mode === "project") {
    headers["X-Project-ID"] = credentials.project;
  } else if (credentials.mode === "token") {
    headers["X-Auth-Token"] = credentials.token;
    if (credentials.project) headers["X-Project-ID"] = credentials.project;
  } else if (credentials.mode === "signed") {
    const s = credentials.signed;
    Object.assign(headers, {"X-Project-ID": s.project, "URL-Signature": s.signature, "URL-Expires": s.expires,
      "URL-Methods": s.methods.join(","), "URL-Paths": s.paths.join(",")});
  }
  return headers;
}

// -- requests ---------------------------------------------------------------------------------

async function errorOf(response) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body.title === "string" && typeof body.description === "string") {
    return new ApiError(response.status, body.title, body.description);
  }
  const said = body && typeof body.message === "string" ? body.message : text.trim().slice(0, 200);
  return new ApiError(response.status, `HTTP ${response.status}`, said || response.statusText || "No description.");
}

export class Api {
  /** base: the URL the REST API is rooted at (the console lives at <base>/console/). */
  constructor(base, credentials) {
    this.base = base;
    this.credentials = credentials;
  }

  url(path, query) {
    const url = new URL(path.replace(/^\//, ""), this.base);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    return url;
  }

  /** One request; resolves {status, data, headers} on 2xx, rejects with an ApiError otherwise. */
  async request(method, path, {body, query, contentType} = {}) {
    const headers = headersFor(this.credentials);
    const init = {method, headers, cache: "no-store", credentials: "omit"};
    if (body !== undefined) {
      headers["Content-Type"] = contentType || "application/json";
      init.body = JSON.stringify(body);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    init.signal = controller.signal;
    let response;
    try {
      response = await fetch(this.url(path, query), init);
    } catch (error) {
      const timedOut = error && error.name === "AbortError";
      throw new ApiError(0, timedOut ? "Timed out" : "Network error", timedOut
        ? `The service did not answer ${method} ${path} within ${TIMEOUT_MS / 1000} s.`
        : `The service could not be reached (${error && error.message ? error.message : error}).`);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) throw await errorOf(response);
    const text = response.status === 204 ? "" : await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    return {status: response.status, data, headers: response.headers};
  }

  get(path, query) { return this.request("GET", path, {query}); }
  post(path, body, query) { return this.request("POST", path, {body, query}); }
  put(path, body) { return this.request("PUT", path, {body}); }
  patch(path, body) { return this.request("PATCH", path, {body, contentType: PATCH_TYPE}); }
  delete(path, query) { return this.request("DELETE", path, {query}); }
}

/** A path below /v2/queues/<queue>, each part encoded. */
export function queuePath(queue, ...rest) {
  return ["v2", "queues", queue, ...rest].map((part) => encodeURIComponent(part)).join("/");
}

// -- live updates -----------------------------------------------------------------------------

/**
 * Runs task every `every` ms while the page is visible; after a failure it waits twice as long each time
 * (up to `max`, with jitter), and goes back to `every` after the next success. onState({ok, error, retryIn, at}).
 */
export class Poller {
  constructor(task, {every = 3000, max = 60000, onState = () => {}} = {}) {
    this.task = task;
    this.every = every;
    this.max = max;
    this.onState = onState;
    this.failures = 0;
    this.timer = null;
    this.running = null;
    this.stopped = true;
    this.onVisibility = () => {
      if (!document.hidden) this.now();
    };
  }

  start() {
    this.stopped = false;
    document.addEventListener("visibilitychange", this.onVisibility);
    return this.now();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  /** Run now (after an action), or right after the run under way. */
  async now() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
    if (this.again && !this.stopped) {
      this.again = false;
      await this.now();
    }
  }

  async run() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (document.hidden) {
      this.onState({ok: true, paused: true});
      return; // the visibilitychange listener starts it again
    }
    let delay = this.every;
    try {
      await this.task();
      this.failures = 0;
      if (!this.stopped) this.onState({ok: true, at: new Date()});
    } catch (error) {
      this.failures += 1;
      const backoff = Math.min(this.max, this.every * 2 ** this.failures);
      delay = Math.round(backoff * (0.8 + Math.random() * 0.4));
      if (!this.stopped) this.onState({ok: false, error, retryIn: delay});
    }
    if (!this.stopped) this.timer = setTimeout(() => this.now(), delay);
  }
}
