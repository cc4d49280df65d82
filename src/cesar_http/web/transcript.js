// The transcript beside the audio: segments with their times, words that seek the audio
// when clicked, and the word being spoken marked while it plays.
//
// From the keyboard the transcript is one Tab stop (a roving tabindex): its items are each
// segment's time and then the segment's words, one of them at a time in the Tab order; the
// arrow keys move between them, Enter or Space plays from the focused one. A long transcript
// would otherwise be hundreds of Tab stops between the player and the rest of the page.

const ITEMS = ".at, .w";
const MOVES = ["ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp", "Home", "End"];

const clock = (seconds) => {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hh ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
};

function seekTo(container, seconds) {
  const audio = document.getElementById("audio");
  if (!audio || !audio.src) return;
  audio.currentTime = seconds;
  container.dispatchEvent(new CustomEvent("seeked-to", { detail: seconds }));
}

const itemsOf = (container) => [...container.querySelectorAll(ITEMS)];

// Make `item` the transcript's one Tab stop (and focus it, when asked).
function rove(container, item, focus = false) {
  for (const other of container.querySelectorAll(`:is(${ITEMS})[tabindex="0"]`)) {
    if (other !== item) other.tabIndex = -1;
  }
  item.tabIndex = 0;
  if (focus) item.focus();
}

// Where each key takes the focus from `item`: a neighbour, a segment's time, an end.
function target(container, item, key) {
  const items = itemsOf(container);
  const at = items.indexOf(item);
  const segment = item.closest("p");
  const timeOf = (p) => p?.querySelector(".at");
  switch (key) {
    case "ArrowRight": return items[at + 1];
    case "ArrowLeft": return items[at - 1];
    case "ArrowDown": return timeOf(segment?.nextElementSibling);
    case "ArrowUp": return timeOf(segment?.previousElementSibling);
    case "Home": return items[0];
    case "End": return items[items.length - 1];
    default: return item;
  }
}

// The keys and clicks of the transcript's items, handled once on the container, which keeps
// them across every rendering of the transcript.
export function enableKeyboard(container) {
  container.addEventListener("keydown", (event) => {
    const item = event.target.closest?.(ITEMS);
    if (!item || event.altKey || event.ctrlKey || event.metaKey) return;
    if (item.classList.contains("w") && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();  // Space would scroll the page
      seekTo(container, Number(item.dataset.start));
      return;
    }
    if (!MOVES.includes(event.key)) return;
    event.preventDefault();  // the arrows would scroll the page, even at either end
    const next = target(container, item, event.key);
    if (next) rove(container, next, true);
  });
  container.addEventListener("focusin", (event) => {
    const item = event.target.closest?.(ITEMS);
    if (item) rove(container, item);
  });
  container.addEventListener("click", (event) => {
    const word = event.target.closest?.(".w");
    if (word) seekTo(container, Number(word.dataset.start));
  });
}

// How the page shows each speaker, as the downloads do: the name given, or "Speaker 1",
// "Speaker 2"... in the order of the job's speakers (its `speakers` list), whatever their
// ids (SPEAKER_00...). With `named` false, the number alone (what the rename form says).
// While a job runs its speakers are not listed yet: an id's own number stands in
// (SPEAKER_00 is Speaker 1), the order the finished job lists them in (unless a channel
// stays silent).
export function speakerLabels(job, named = true) {
  const labels = {};
  const speakers = Array.isArray(job.speakers) ? job.speakers : [];
  speakers.forEach((speaker, index) => {
    labels[speaker.id] = (named && speaker.name) || `Speaker ${index + 1}`;
  });
  for (const { speaker } of job.segments || []) {
    if (!speaker || Object.hasOwn(labels, speaker)) continue;
    const number = /^SPEAKER_(\d+)$/.exec(speaker);
    labels[speaker] = number ? `Speaker ${Number(number[1]) + 1}` : speaker;
  }
  return labels;
}

export function renderTranscript(container, job) {
  // Rendered again as segments arrive or speakers are renamed: the Tab stop stays where it
  // was, and so does the focus.
  const labels = speakerLabels(job);
  const before = itemsOf(container);
  const stop = Math.max(0, before.findIndex((item) => item.tabIndex === 0));
  const focused = before.includes(document.activeElement);
  const paragraphs = (job.segments || []).map((segment, index) => {
    const p = document.createElement("p");
    p.dataset.start = segment.start;
    p.dataset.end = segment.end;
    const at = document.createElement("button");
    at.type = "button";
    at.className = "at";
    at.tabIndex = -1;
    at.textContent = clock(segment.start);
    const speaker = segment.speaker ? labels[segment.speaker] : null;
    at.setAttribute("aria-label", `Play from ${clock(segment.start)}${speaker ? `, ${speaker}` : ""}`);
    at.addEventListener("click", () => seekTo(container, segment.start));
    p.append(at);
    if (speaker) {
      const who = document.createElement("span");
      who.className = "who";
      who.dataset.speaker = segment.speaker;
      who.textContent = `${speaker}:`;
      p.append(who);
    }
    const text = document.createElement("span");
    text.className = "text";
    text.id = `segment-${index}`;
    at.setAttribute("aria-describedby", text.id);  // the time button reads out its segment
    if (segment.words && segment.words.length) {
      for (const word of segment.words) {
        const w = document.createElement("span");
        w.className = "w";
        w.setAttribute("role", "button");
        w.tabIndex = -1;
        w.dataset.start = word.start;
        w.dataset.end = word.end;
        w.textContent = word.word;
        text.append(w);
      }
    } else {
      text.textContent = segment.text;
    }
    p.append(text);
    return p;
  });
  if (!paragraphs.length && job.text) {
    const p = document.createElement("p");
    p.textContent = job.text;
    paragraphs.push(p);
  }
  container.replaceChildren(...paragraphs);
  const items = itemsOf(container);
  if (items.length) rove(container, items[Math.min(stop, items.length - 1)], focused);
}

// Marks the word (or, without word timings, the segment) at the audio's current time.
export class Highlighter {
  constructor(audio, container) {
    this.audio = audio;
    this.container = container;
    this.marked = null;
    this.frame = null;
    this.refresh();
    const update = () => this.update();
    audio.addEventListener("timeupdate", update);
    audio.addEventListener("seeked", update);
    audio.addEventListener("play", () => this.loop());
    container.addEventListener("seeked-to", update);
  }

  refresh() {
    const words = this.container.querySelectorAll(".w");
    this.items = [...(words.length ? words : this.container.querySelectorAll("p[data-start]"))];
    this.starts = this.items.map((item) => Number(item.dataset.start));
    this.marked = null;
  }

  loop() {  // smoother than timeupdate (about 4 a second) while playing
    cancelAnimationFrame(this.frame);
    const tick = () => {
      this.update();
      if (!this.audio.paused) this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  update() {
    if (!this.items.length) return;
    const now = this.audio.currentTime;
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {  // the last item starting at or before now
      const mid = (low + high + 1) >> 1;
      if (this.starts[mid] <= now + 0.01) low = mid; else high = mid - 1;
    }
    const item = this.items[low];
    const inside = this.starts[low] <= now + 0.01 && now <= Number(item.dataset.end) + 0.3;
    const next = inside ? item : null;
    if (next === this.marked) return;
    if (this.marked) {
      this.marked.classList.remove(this.marked.classList.contains("w") ? "now" : "seg-now");
      this.marked.removeAttribute("aria-current");
    }
    this.marked = next;
    if (next) {
      next.classList.add(next.classList.contains("w") ? "now" : "seg-now");
      next.setAttribute("aria-current", "true");
    }
  }
}
