// The public HTTP API, as this page calls it: the same endpoints as any client. Paths are
// relative to the page, so the page works behind a reverse proxy that adds a prefix.

const KEY = "cesar-api-key";

export class NeedKey extends Error {}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : { message: `HTTP ${status}` };
    super(detail.hint ? `${detail.message} ${detail.hint}` : detail.message);
    this.status = status;
    this.code = detail.code;
  }
}

// The key lives in sessionStorage: it is gone when the tab is closed.
export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(key, extra = {}) {
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// A refusal speaks of the key the request carried. When the key was given or changed while
// the request was on its way (the page's first requests go out before anyone types it), the
// request is sent again with the new key; the key is forgotten only when it is the one refused.
export async function request(path, options = {}) {
  const sent = apiKey.get();
  const response = await fetch(path, { ...options, headers: headers(sent, options.headers) });
  if (response.status === 401) {
    const now = apiKey.get();
    if (now && now !== sent) return request(path, options);
    apiKey.clear();
    throw new NeedKey("An API key is needed.");
  }
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  return response;
}

export const getJson = async (path) => (await request(path)).json();

export function listJobs(cursor, limit = 20) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return getJson(`jobs?${query}`);
}

export const getJob = (id) => getJson(`jobs/${encodeURIComponent(id)}`);

export async function submit(file, fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== "" && value !== null && value !== undefined) form.append(name, value);
  }
  form.append("file", file, file.name);  // last: the server reads the options first
  return (await request("transcribe", { method: "POST", body: form })).json();
}

// Cancel an unfinished job (answer: the job) or delete a finished one (answer: null).
export async function cancelOrDelete(id) {
  const response = await request(`jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  return response.status === 204 ? null : response.json();
}

export async function renameSpeakers(id, speakers) {
  const response = await request(`jobs/${encodeURIComponent(id)}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ speakers }),
  });
  return response.json();
}

export async function blob(path) {
  return (await request(path)).blob();
}

// What this server offers, read from its OpenAPI document, so the page shows only what
// works: speakers (and which kinds it can tell apart), renaming them, live events.
export async function features() {
  const spec = await (await fetch("openapi.json")).json();
  const paths = spec.paths || {};
  const form = paths["/transcribe"]?.post?.requestBody?.content?.["multipart/form-data"];
  const fields = form?.schema?.properties || {};
  const speakers = "diarize" in fields;
  return {
    speakers,
    diarizers: speakers && paths["/diarizers"]?.get ? await diarizers() : [],
    rename: Boolean(paths["/jobs/{job_id}"]?.patch),
    events: Boolean(paths["/jobs/{job_id}/events"]?.get),
    listEvents: Boolean(paths["/jobs/events"]?.get),
  };
}

// Each diarize mode and whether the server can run it (no key needed); none when the
// server cannot say, so that nothing is withheld on a guess.
async function diarizers() {
  try {
    const response = await fetch("diarizers");
    return response.ok ? (await response.json()).diarizers || [] : [];
  } catch {
    return [];
  }
}

// Follow a job: Server-Sent Events where the server has them and no key is needed
// (EventSource cannot send one), else polling. Calls onJob with the job as it changes and
// onSegment with each new segment an event brings; returns a function that stops.
export function follow(id, { onJob, onSegment, onError }, useEvents) {
  let stopped = false;
  let timer = null;
  let source = null;
  const refresh = async () => {
    try {
      const job = await getJob(id);
      if (stopped) return;
      onJob(job);
      if (!["completed", "error", "cancelled"].includes(job.status) && !source) {
        timer = setTimeout(refresh, 1000);
      }
    } catch (error) {
      if (!stopped) onError(error);
    }
  };
  if (useEvents && !apiKey.get() && "EventSource" in window) {
    source = new EventSource(`jobs/${encodeURIComponent(id)}/events`);
    source.addEventListener("segment", (event) => onSegment(JSON.parse(event.data)));
    for (const name of ["status", "progress"]) {
      source.addEventListener(name, (event) => onJob(JSON.parse(event.data), true));
    }
    // The job's end, or the stream's: an event named "error" is both a job's failure and
    // the stream's own (gone or refused). Either way the job is read again, and polled while
    // it is unfinished.
    const end = () => {
      if (!source) return;
      source.close();
      source = null;
      if (!stopped) refresh();
    };
    for (const name of ["completed", "error", "cancelled"]) source.addEventListener(name, end);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}
