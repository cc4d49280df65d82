// Cesar's web page: submit audio, follow jobs, read a transcript beside its audio.
// Plain ES modules, no build step; every request goes to this server's public API.
import * as api from "./api.js";
import { ENDED, JobList, label } from "./jobs.js";
import { enableKeyboard, renderTranscript, speakerLabels, Highlighter } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const FORMATS = ["txt", "srt", "vtt", "json", "tsv"];
const LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar", "zh", "ja", "ko", "hi"];

let features = { speakers: false, diarizers: [], rename: false, events: false, listEvents: false };
let jobs = null;  // the JobList, once the page has started
let stopFollowing = () => {};
let audioUrl = null;

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

async function guarded(work) {
  try {
    notice("");
    return await work();
  } catch (error) {
    if (error instanceof api.NeedKey) return askKey();
    notice(error.message);
  }
}

function askKey() {
  for (const id of ["home", "job"]) $(id).hidden = true;
  $("key-form").hidden = false;
  $("key").focus();
}

function show(view) {
  $("key-form").hidden = true;
  $("home").hidden = view !== "home";
  $("job").hidden = view !== "job";
}

// ---- submitting ----------------------------------------------------------------------

function chosenFiles(files) {
  $("chosen").textContent = files.length ? [...files].map((f) => f.name).join(", ") : "";
}

async function submitFiles(event) {
  event.preventDefault();
  const files = [...$("files").files];
  if (!files.length) {
    $("upload-status").textContent = "Choose or drop at least one file first.";
    $("files").focus();
    return;
  }
  const fields = {
    model: $("model").value,
    language: $("language").value.trim(),
    task: $("task").value,
    word_timestamps: $("words").checked ? "true" : "false",
  };
  if (features.speakers && $("speakers").value) fields.diarize = $("speakers").value;
  $("submit").disabled = true;
  try {
    await guarded(async () => {
      for (const [i, file] of files.entries()) {
        $("upload-status").textContent = `Sending ${file.name} (${i + 1} of ${files.length})…`;
        await api.submit(file, fields);
      }
      $("upload-status").textContent = `Sent ${files.length} file(s).`;
      $("files").value = "";
      chosenFiles([]);
      jobs.first();
      await jobs.load();
    });
  } finally {
    $("submit").disabled = false;
  }
}

// A kind of speakers the server cannot tell apart (its voice model not installed) stays in
// the list, disabled, and a note under the options says how to get it: the server's hint.
function offerDiarizers(diarizers) {
  const select = $("speakers");
  const missing = diarizers.filter((d) => d.available === false);
  for (const option of select.options) {
    option.disabled = missing.some((d) => d.diarize === option.value);
  }
  if (select.selectedOptions[0]?.disabled) select.value = "";
  const note = $("speakers-note");
  note.textContent = missing.map((d) => {
    const name = [...select.options].find((o) => o.value === d.diarize)?.textContent || d.diarize;
    const error = d.error || {};
    const how = error.code === "diarizer_not_installed" && error.hint
      ? `To add it, run on the server: ${error.hint}`
      : [error.message, error.hint].filter(Boolean).join(" ");
    return `${name} is not available on this server. ${how}`.trim();
  }).join(" ");
  note.hidden = !missing.length;
  if (missing.length) select.setAttribute("aria-describedby", "speakers-note");
  else select.removeAttribute("aria-describedby");
}

// ---- one job -------------------------------------------------------------------------

let current = null;
let highlighter = null;
let resultShown = false;  // the player and the full transcript, once per visit

function showStatus(job) {
  $("job-status").textContent = job.status;
  $("job-progress").value = job.progress;
  $("job-percent").textContent = `${job.progress} %`;
  const running = !ENDED.includes(job.status);
  $("job-cancel").hidden = !running;
  $("job-delete").hidden = running;
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error ? job.error.message : "";
}

function onJob(job, partial = false) {
  if (partial) {  // an event with part of the job
    const before = current || { status: "queued", progress: 0 };
    current = { ...before, status: job.status ?? before.status, progress: job.progress ?? before.progress };
    return showStatus(current);
  }
  current = job;
  showStatus(job);
  if (job.status !== "completed" && job.segments?.length && !resultShown) {
    renderTranscript($("transcript"), job);  // the segments so far
  }
  if (job.status === "completed" && job.segments && !resultShown) {
    resultShown = true;
    showResult(job);
  }
}

function onSegment(segment) {
  // Once the result is shown it is the whole truth: an event stream may replay segments.
  if (!current || resultShown) return;
  const known = current.segments || [];
  if (known.some((s) => s.id === segment.id)) return;
  current.segments = [...known, segment];
  renderTranscript($("transcript"), current);
}

async function showResult(job) {
  renderTranscript($("transcript"), job);
  $("player-box").hidden = false;
  await loadAudio(job);
  if (highlighter) highlighter.refresh();
  else highlighter = new Highlighter($("audio"), $("transcript"));
  const links = FORMATS.map((format) => {
    const link = document.createElement("a");
    link.href = `jobs/${job.id}/transcript?format=${format}`;
    link.textContent = format.toUpperCase();
    link.setAttribute("aria-label", `Download ${format.toUpperCase()}`);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      guarded(() => download(job, format));
    });
    return link;
  });
  $("downloads").replaceChildren(...links);
  showSpeakerForm(job);
}

async function loadAudio(job) {
  const audio = $("audio");
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = null;
  if (!api.apiKey.get()) {  // streamed, with range requests
    audio.src = `jobs/${job.id}/audio`;
    return;
  }
  try {  // an <audio> cannot send the key: fetch the audio once instead
    audioUrl = URL.createObjectURL(await api.blob(`jobs/${job.id}/audio`));
    audio.src = audioUrl;
  } catch (error) {
    if (error instanceof api.ApiError) $("player-box").querySelector("audio").hidden = true;
    else throw error;
  }
}

async function download(job, format) {
  const data = await api.blob(`jobs/${job.id}/transcript?format=${format}`);
  const base = (job.source.filename || job.id).replace(/\.[^.]+$/, "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(data);
  link.download = `${base}.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function showSpeakerForm(job) {
  // The speakers heard in the segments, in the job's order (Speaker 1 first).
  const heard = new Set((job.segments || []).map((s) => s.speaker).filter(Boolean));
  const listed = Array.isArray(job.speakers) ? job.speakers : [];
  const ids = [...new Set([...listed.map((s) => s.id), ...heard])].filter((id) => heard.has(id));
  // Folded away until asked for: open, it would fill a phone's screen above the transcript.
  $("speaker-box").hidden = !(features.rename && ids.length);
  if ($("speaker-box").hidden) return;
  const numbers = speakerLabels(job, false);  // each field says whom it names: "Speaker 1"
  $("speaker-fields").replaceChildren(...ids.map((speaker) => {
    const field = document.createElement("label");
    const { name, talk_time: talk } = listed.find((s) => s.id === speaker) || {};
    field.textContent = talk ? `${numbers[speaker]} (${Math.round(talk)} s)` : numbers[speaker];
    const input = document.createElement("input");
    input.name = speaker;
    input.value = name || "";
    input.placeholder = numbers[speaker];
    input.maxLength = 100;  // the most the server takes
    input.autocomplete = "off";
    field.append(input);
    return field;
  }));
  $("names-saved").textContent = "";
}

async function saveSpeakers(event) {
  event.preventDefault();
  // Every label is sent: an empty field takes its speaker's name back.
  const speakers = {};
  for (const input of $("speaker-fields").querySelectorAll("input")) {
    speakers[input.name] = input.value.trim();
  }
  $("names-saved").textContent = "";
  await guarded(async () => {
    const job = await api.renameSpeakers(current.id, speakers);
    current = { ...current, speakers: job.speakers ?? current.speakers };
    renderTranscript($("transcript"), current);
    highlighter.refresh();
    $("names-saved").textContent = "Names saved.";
  });
}

async function copyText() {
  const text = current?.text || $("transcript").innerText;
  try {
    await navigator.clipboard.writeText(text.trim());
    $("copied").textContent = "Copied.";
  } catch {
    $("copied").textContent = "Copying was refused by the browser; select the text instead.";
  }
}

function openJob(id) {
  show("job");
  current = null;
  resultShown = false;
  $("job-title").textContent = id;
  $("transcript").replaceChildren();
  $("player-box").hidden = true;
  $("audio").removeAttribute("src");
  $("copied").textContent = "";
  stopFollowing = api.follow(id, {
    onJob: (job, partial) => {
      if (!partial) $("job-title").textContent = label(job);
      onJob(job, partial);
    },
    onSegment,
    onError: (error) => guarded(() => { throw error; }),
  }, features.events);
}

// ---- wiring --------------------------------------------------------------------------

// Stop following a job and the list of jobs: on a new route, and when the key is given
// (what was followed without it would otherwise go on with it, and show the job twice).
function stopWatching() {
  stopFollowing();
  jobs.stop();
}

async function route() {
  stopWatching();
  const match = location.hash.match(/^#\/jobs\/([\w-]+)$/);
  if (match) return openJob(match[1]);
  show("home");
  await guarded(() => jobs.load());
}

async function start() {
  $("languages").replaceChildren(...LANGUAGES.map((code) => new Option(code, code)));
  $("files").addEventListener("change", () => chosenFiles($("files").files));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    $("files").files = event.dataTransfer.files;
    chosenFiles($("files").files);
  });
  $("submit-form").addEventListener("submit", submitFiles);
  jobs = new JobList({ guarded, features: () => features });
  enableKeyboard($("transcript"));
  $("copy").addEventListener("click", copyText);
  $("speaker-names").addEventListener("submit", saveSpeakers);
  for (const [id, verb] of [["job-cancel", "Cancel"], ["job-delete", "Delete"]]) {
    $(id).addEventListener("click", () => guarded(async () => {
      if (verb === "Delete" && !confirm("Delete this job and its transcript?")) return;
      const job = await api.cancelOrDelete(current.id);
      if (job) onJob(job); else location.hash = "#/";
    }));
  }
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    stopWatching();  // now, not once the models are listed
    api.apiKey.set($("key").value.trim());
    $("key").value = "";
    await loadModels();
    route();
  });
  window.addEventListener("hashchange", route);
  try {
    features = await api.features();
  } catch { /* an older server: the basics only */ }
  $("speakers-option").hidden = !features.speakers;
  offerDiarizers(features.diarizers);
  await loadModels();
  await route();
}

// The server's models in the model list, once: at start, or once the key is given where
// the server needs one (listing them needs it too).
let modelsListed = false;
async function loadModels() {
  if (modelsListed) return;
  try {
    const models = await api.getJson("v1/models");
    for (const model of models.data.filter((m) => m.id !== "whisper-1")) {
      $("model").append(new Option(model.id, model.id));
    }
    modelsListed = true;
  } catch { /* no key yet, or a wrong one: route() asks for it, and this runs again */ }
}

start();
