// The API client: same origin, the session cookie (HttpOnly: script never sees it),
// and the header the server requires beside a cookie on state-changing requests.

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = (problem && problem.code) || `http_${status}`;
    this.title = (problem && problem.title) || `Request failed (${status})`;
    this.detail = (problem && problem.detail) || "";
    this.problem = problem || {};
  }
}

const listeners = new Set();
/** Called with the error whenever the server says the session is gone (401). */
export function onUnauthenticated(fn) {
  listeners.add(fn);
}

export async function api(method, path, body, { signal, quiet401 = false } = {}) {
  const headers = { "X-Requested-With": "revenge", Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, {
      title: "The server cannot be reached",
      detail: "Check the connection; the page retries when you try again.",
      code: "network_error",
    });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !quiet401) for (const fn of listeners) fn(error);
    throw error;
  }
  return data;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body, options);
export const put = (path, body, options) => api("PUT", path, body, options);
export const patch = (path, body, options) => api("PATCH", path, body, options);
export const del = (path, options) => api("DELETE", path, undefined, options);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else q.set(key, value);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

let routeTable = null;
/** The server's routes (its OpenAPI document), to offer only what this server has. */
export async function hasRoute(method, path) {
  if (!routeTable) routeTable = get("/api/v1/openapi.json").then((doc) => doc.paths || {}).catch(() => ({}));
  const paths = await routeTable;
  return Boolean(paths[path] && paths[path][method.toLowerCase()]);
}
