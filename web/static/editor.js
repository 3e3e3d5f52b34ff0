// The region editor: brush, rectangle and lasso paint the part to vary on a canvas over the image, with
// undo. "Vary this region" sends the canvas as the mask (opaque where painted) with the optional prompt.
"use strict";

(() => {
  const form = document.getElementById("region-editor");
  if (!form) return;
  const canvas = form.querySelector("canvas");
  const context = canvas.getContext("2d");
  const brush = form.querySelector('input[name="brush"]');
  const undoButton = form.querySelector('[data-command="undo"]');
  const clearButton = form.querySelector('[data-command="clear"]');
  const submit = form.querySelector('button[type="submit"]');
  const error = form.querySelector(".form-error");
  const paint = "rgb(255, 64, 96)";
  const history = []; // the canvas before each stroke, for undo
  let tool = "brush";
  let stroke = null; // {start, points, before} while the pointer is down

  const painted = () => history.length > 0;
  const refresh = () => { undoButton.disabled = clearButton.disabled = submit.disabled = !painted(); };
  const snapshot = () => context.getImageData(0, 0, canvas.width, canvas.height);
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * canvas.width / box.width, y: (event.clientY - box.top) * canvas.height / box.height };
  };

  form.querySelectorAll("[data-tool]").forEach((button) => button.addEventListener("click", () => {
    tool = button.dataset.tool;
    form.querySelectorAll("[data-tool]").forEach((other) => other.setAttribute("aria-pressed", String(other === button)));
  }));

  function draw(points, finished) {
    context.putImageData(stroke.before, 0, 0);
    context.fillStyle = context.strokeStyle = paint;
    const [first, last] = [points[0], points[points.length - 1]];
    if (tool === "rectangle") {
      context.fillRect(Math.min(first.x, last.x), Math.min(first.y, last.y), Math.abs(last.x - first.x), Math.abs(last.y - first.y));
    } else if (tool === "lasso") {
      context.beginPath();
      points.forEach((p, i) => (i ? context.lineTo(p.x, p.y) : context.moveTo(p.x, p.y)));
      if (finished) { context.closePath(); context.fill(); } else { context.lineWidth = 3; context.stroke(); }
    } else {
      context.lineWidth = Number(brush.value);
      context.lineCap = context.lineJoin = "round";
      context.beginPath();
      points.forEach((p, i) => (i ? context.lineTo(p.x, p.y) : context.moveTo(p.x, p.y)));
      if (points.length === 1) context.lineTo(first.x + 0.1, first.y);
      context.stroke();
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    stroke = { points: [at(event)], before: snapshot() };
    draw(stroke.points, false);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    stroke.points.push(at(event));
    draw(stroke.points, false);
  });
  const end = (event) => {
    if (!stroke) return;
    stroke.points.push(at(event));
    draw(stroke.points, true);
    history.push(stroke.before);
    stroke = null;
    refresh();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  undoButton.addEventListener("click", () => { if (painted()) context.putImageData(history.pop(), 0, 0); refresh(); });
  clearButton.addEventListener("click", () => {
    history.push(snapshot());
    context.clearRect(0, 0, canvas.width, canvas.height);
    history.length = 0;
    refresh();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    const mask = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const body = new FormData(form);
    body.set("mask", mask, "mask.png");
    const response = await kaika.fetch(form.action, { method: "POST", body });
    if (response.ok) {
      window.location.assign((await response.json()).url);
      return;
    }
    error.textContent = await response.text();
    error.hidden = false;
    refresh();
  });
})();
