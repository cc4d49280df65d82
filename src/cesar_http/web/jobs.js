// The list of jobs on the home view: newest first, a page at a time through the API's
// cursor (Older follows a page's next_cursor; Newer goes back to the cursor it came from),
// the first page followed live through GET /jobs/events, other pages polled while a job on
// them is unfinished.
import * as api from "./api.js";

const $ = (id) => document.getElementById(id);
export const ENDED = ["completed", "error", "cancelled"];
export const label = (job) => job.source.filename || job.source.url || job.id;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

// Jobs a page: 20, or the page's own `?limit=` (1 to 100), for those who want more at once.
export function pageSize(search = location.search) {
  const asked = Number(new URLSearchParams(search).get("limit"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 100 ? asked : 20;
}

export class JobList {
  // `guarded` runs a request and shows what went wrong; `features` says what the server has.
  constructor({ guarded, features }) {
    this.guarded = guarded;
    this.features = features;
    this.size = pageSize();
    this.cursors = [null];  // the cursor of each page seen, newest first
    this.timer = null;
    this.events = null;  // the EventSource of the list's changes, while the first page shows
    this.eventsFailed = false;
    $("older").addEventListener("click", () => this.turn(+1));
    $("newer").addEventListener("click", () => this.turn(-1));
  }

  get index() {
    return this.cursors.length - 1;
  }

  // Back to the newest jobs (after a submission).
  first() {
    this.cursors = [null];
  }

  turn(step) {
    if (step > 0) this.cursors.push($("older").dataset.cursor);
    else if (this.index > 0) this.cursors.pop();
    this.guarded(() => this.load());
  }

  stop() {
    clearTimeout(this.timer);
    if (this.events) this.events.close();
    this.events = null;
  }

  async load() {
    clearTimeout(this.timer);
    const index = this.index;
    const page = await api.listJobs(this.cursors[index], this.size);
    if (!page.jobs.length && index > 0) {  // its last jobs were deleted: the page before
      this.cursors.pop();
      return this.load();
    }
    $("jobs").replaceChildren(...page.jobs.map((job) => this.row(job)));
    $("no-jobs").hidden = page.jobs.length > 0;
    this.showPager(index, page);
    if (index === 0 ? this.watch() : (this.stop(), false)) return;
    // While a job on this page (or a new one, on the first) is unfinished, look again soon.
    if (!$("home").hidden && (index === 0 || page.jobs.some((j) => !ENDED.includes(j.status)))) {
      this.timer = setTimeout(() => this.guarded(() => this.load()), 2000);
    }
  }

  showPager(index, page) {
    const focused = document.activeElement;
    $("newer").disabled = index === 0;
    $("older").disabled = !page.next_cursor;
    $("older").dataset.cursor = page.next_cursor || "";
    const paged = index > 0 || Boolean(page.next_cursor);
    $("pager").hidden = !paged;
    const from = index * this.size + 1;
    $("page-status").textContent = paged && page.jobs.length
      ? `Jobs ${from} to ${from + page.jobs.length - 1}${page.next_cursor ? "" : " (the oldest)"}`
      : "";
    // A button that turned the page may now be disabled: keep the focus on the pager.
    if ((focused === $("older") || focused === $("newer")) && focused.disabled) {
      const other = focused === $("older") ? $("newer") : $("older");
      (other.disabled || !paged ? $("jobs-title") : other).focus();
    }
  }

  row(job) {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    li.dataset.status = job.status;
    const name = document.createElement("a");
    name.className = "name";
    name.href = `#/jobs/${job.id}`;
    name.textContent = label(job);
    const actions = document.createElement("div");
    actions.className = "row-actions";
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = job.progress;
    progress.setAttribute("aria-label", `Progress of ${label(job)}`);
    const action = document.createElement("button");
    action.type = "button";
    const ended = ENDED.includes(job.status);
    action.textContent = ended ? "Delete" : "Cancel";
    action.setAttribute("aria-label", `${action.textContent} ${label(job)}`);
    action.addEventListener("click", () => this.guarded(async () => {
      if (ended && !confirm(`Delete ${label(job)} and its transcript?`)) return;
      await api.cancelOrDelete(job.id);
      await this.load();
    }));
    actions.append(progress, action);
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.dataset.created = when(job.created_at);
    meta.textContent = `${job.status} · ${job.progress} % · ${meta.dataset.created}`;
    li.append(name, actions, meta);
    return li;
  }

  reloadSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.guarded(() => this.load()), 300);
  }

  // The first page follows GET /jobs/events where the server has it (and no key is needed,
  // which an EventSource cannot send): rows change in place, a new job reloads the page.
  watch() {
    if (this.events) return true;
    const usable = this.features().listEvents && !api.apiKey.get() && !$("home").hidden;
    if (this.eventsFailed || !usable) return false;
    this.events = new EventSource(`jobs/events?limit=${this.size}`);
    this.events.addEventListener("job", (event) => {
      const job = JSON.parse(event.data);
      const row = [...$("jobs").children].find((li) => li.dataset.id === job.id);
      if (!row || row.dataset.status !== job.status) return this.reloadSoon();
      row.querySelector("progress").value = job.progress;
      const meta = row.querySelector(".meta");
      meta.textContent = `${job.status} · ${job.progress} % · ${meta.dataset.created}`;
    });
    this.events.onerror = () => {  // refused or gone: poll instead
      this.eventsFailed = true;
      this.stop();
      this.reloadSoon();
    };
    return true;
  }
}
