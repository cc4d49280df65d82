// The transcript beside the audio: segments with their times, words that seek the audio
// when clicked, and the word being spoken marked while it plays.

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

export function renderTranscript(container, job, names) {
  const paragraphs = (job.segments || []).map((segment) => {
    const p = document.createElement("p");
    p.dataset.start = segment.start;
    p.dataset.end = segment.end;
    const at = document.createElement("button");
    at.type = "button";
    at.className = "at";
    at.textContent = clock(segment.start);
    at.setAttribute("aria-label", `Play from ${clock(segment.start)}`);
    at.addEventListener("click", () => seekTo(container, segment.start));
    p.append(at);
    if (segment.speaker) {
      const who = document.createElement("span");
      who.className = "who";
      who.dataset.speaker = segment.speaker;
      who.textContent = `${names[segment.speaker] || segment.speaker}:`;
      p.append(who);
    }
    const text = document.createElement("span");
    text.className = "text";
    if (segment.words && segment.words.length) {
      for (const word of segment.words) {
        const w = document.createElement("span");
        w.className = "w";
        w.dataset.start = word.start;
        w.dataset.end = word.end;
        w.textContent = word.word;
        w.addEventListener("click", () => seekTo(container, word.start));
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
