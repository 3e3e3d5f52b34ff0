// A job's live page: follows each running job's Server-Sent Events (web/live.py) and shows where it is,
// its latest preview, then its result and buttons (or why it failed). Without script, a reload shows it.
"use strict";

function followJob(section) {
  const live = section.querySelector(".job-live");
  const status = section.querySelector(".job-status");
  const bar = section.querySelector(".job-progress");
  const preview = section.querySelector(".job-preview");
  const failed = section.querySelector(".job-failed");
  const source = new EventSource(section.dataset.events);
  const read = (event) => JSON.parse(event.data);

  source.addEventListener("waiting", (event) => {
    const { position } = read(event);
    status.textContent = position ? `Waiting to start (position ${position})` : "Waiting to start…";
  });
  source.addEventListener("running", () => { status.textContent = "Running…"; });
  source.addEventListener("progress", (event) => {
    const { step, total, percent, preview: image } = read(event);
    status.textContent = `${percent}% (step ${step}/${total})`;
    bar.value = percent;
    if (image) { preview.src = image; preview.hidden = false; }
  });
  source.addEventListener("finished", (event) => {
    source.close();
    section.dataset.status = "done";
    live.hidden = true;
    section.querySelector(".job-result").innerHTML = read(event).html;
  });
  source.addEventListener("failed", (event) => {
    source.close();
    section.dataset.status = "failed";
    live.hidden = true;
    failed.textContent = `❌ ${read(event).message}`;
    failed.hidden = false;
  });
}

document.querySelectorAll("section.live-job[data-events]").forEach(followJob);
