// Talking to picd: JSON in and out, the CSRF token on mutating calls, and the two answers
// every page treats the same way (401 -> sign in again, setup_required -> the wizard).

/** A failed call, with the API's `{error, code, fields?, retry_after?}` body unpacked. */
export class ApiError extends Error {
  constructor(status, body) {
    const fallback =
      status === 0 ? "picd cannot be reached. Check your connection and try again." : `Request failed (HTTP ${status}).`;
    const message = (body && typeof body.error === "string" && body.error) || fallback;
    super(message);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? "network" : "http_error");
    this.fields = (body && body.fields) || {};
    this.retryAfter = body && Number.isFinite(body.retry_after) ? body.retry_after : null;
  }
}

// The token lives only in memory: a page load fetches it again, so it is never left behind
// in storage that outlives the session.
let csrfToken = null;

/** Keeps the token that login and setup completion hand back, saving a round trip. */
export function rememberCsrfToken(token) {
  if (typeof token === "string" && token) {
    csrfToken = token;
  }
}

/**
 * The server exempts login, the wizard's claim and /api/invite/accept: they run before a
 * session (and so its token) exists. The wizard's other writes carry the token of its claim;
 * logout and the password routes need it like every other change.
 */
function needsCsrf(method, path) {
  return (
    !["GET", "HEAD", "OPTIONS"].includes(method) &&
    path.startsWith("/api/") &&
    path !== "/api/auth/login" &&
    path !== "/api/setup/claim" &&
    path !== "/api/invite/accept"
  );
}

async function currentCsrfToken() {
  if (!csrfToken) {
    const body = await api("/api/auth/csrf-token");
    csrfToken = body.csrf_token;
  }
  return csrfToken;
}

/** `?a=1&b=2` from an object, leaving out empty values; "" when nothing is left. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A promise that never settles: the page is navigating away, nothing should render. */
function leaving(url) {
  window.location.assign(url);
  return new Promise(() => {});
}

/**
 * Calls the API. Options: method, body (sent as JSON), and redirect (default true): when
 * false, 401 and setup_required are thrown to the caller instead of navigating.
 */
export async function api(path, { method = "GET", body, redirect = true } = {}, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (needsCsrf(method, path)) {
    headers["X-CSRF-Token"] = await currentCsrfToken();
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, null);
  }
  let data = null;
  if ((response.headers.get("content-type") || "").includes("application/json")) {
    data = await response.json().catch(() => null);
  }
  if (response.ok) {
    return data;
  }
  const error = new ApiError(response.status, data);
  // A token from before a re-login is stale; fetch the session's current one and try once more.
  if (error.code === "csrf_invalid" && !retried) {
    csrfToken = null;
    return api(path, { method, body, redirect }, true);
  }
  if (redirect && response.status === 401) {
    return leaving("/login");
  }
  if (redirect && error.code === "setup_required") {
    return leaving("/setup");
  }
  throw error;
}

/**
 * A POST whose answer is a server-sent event stream (EventSource cannot POST): calls
 * `onEvent` with each event's `data` parsed as JSON, as it arrives; resolves when the
 * stream ends. A refused request throws an ApiError like `api` does.
 */
export async function apiStream(path, { method = "POST", body } = {}, onEvent) {
  const headers = { Accept: "text/event-stream", "Content-Type": "application/json" };
  if (needsCsrf(method, path)) {
    headers["X-CSRF-Token"] = await currentCsrfToken();
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: JSON.stringify(body ?? {}),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    const error = new ApiError(response.status, data);
    if (response.status === 401) return leaving("/login");
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const dispatch = (block) => {
    const data = block
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    if (!data) return; // A keep-alive comment, or an event without data.
    try {
      onEvent(JSON.parse(data));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  };
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      throw new ApiError(0, null);
    }
    if (chunk.done) break;
    buffer += chunk.value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  if (buffer.trim()) dispatch(buffer);
}
