"use strict";

// Stroke width in canvas pixels: about a tenth of a digit's height, which
// after scaling to MNIST's 20-pixel box matches MNIST's 2-3 pixel pen.
const PEN_WIDTH = 22;

function setUpPad(section) {
  const canvas = section.querySelector("canvas");
  const fileInput = section.querySelector("input[type=file]");
  const context = canvas.getContext("2d");
  // An uploaded file is sent as it is, so that the server preprocesses the
  // original pixels. Drawing on top of it sends the canvas instead.
  const pad = { side: section.dataset.side, canvas: canvas, file: null };
  let last = null;

  function clear() {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    pad.file = null;
    fileInput.value = "";
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) * canvas.width / rect.width,
      y: (event.clientY - rect.top) * canvas.height / rect.height,
    };
  }

  function line(from, to) {
    context.strokeStyle = "#000";
    context.lineWidth = PEN_WIDTH;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    pad.file = null;
    last = point(event);
    line(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const next = point(event);
    line(last, next);
    last = next;
  });
  for (const name of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(name, () => { last = null; });
  }

  section.querySelector("button.clear").addEventListener("click", clear);
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (!file) return;
    clear();
    pad.file = file;
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => {
      const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
      const width = image.width * scale;
      const height = image.height * scale;
      context.drawImage(image, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
      URL.revokeObjectURL(url);
    };
    // A file the browser cannot show still goes to the server, whose error names it.
    image.onerror = () => URL.revokeObjectURL(url);
    image.src = url;
  });

  clear();
  return pad;
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = false;
}

function showNeighbours(list, neighbours) {
  list.replaceChildren();
  for (const item of neighbours) {
    const entry = document.createElement("li");
    const image = document.createElement("img");
    image.className = "digit";
    image.src = item.image;
    image.alt = "test digit " + item.label;
    const caption = document.createElement("span");
    caption.textContent = item.label + " (" + item.distance.toFixed(2) + ")";
    entry.append(image, caption);
    list.append(entry);
  }
}

function showResult(result) {
  const verdict = document.getElementById("verdict");
  verdict.textContent = result.same ? "Same digit" : "Different digits";
  verdict.className = result.verdict;
  verdict.dataset.verdict = result.verdict;
  document.getElementById("numbers").textContent =
    "distance " + result.distance.toFixed(4) + ", threshold " + result.threshold.toFixed(4) +
    " (distance below the threshold means the same digit)";
  document.getElementById("input-a").src = result.inputs[0];
  document.getElementById("input-b").src = result.inputs[1];
  showNeighbours(document.getElementById("neighbours-a"), result.neighbours[0]);
  showNeighbours(document.getElementById("neighbours-b"), result.neighbours[1]);
  document.getElementById("result").hidden = false;
}

async function compare(pads, button) {
  document.getElementById("error").hidden = true;
  button.disabled = true;
  try {
    const form = new FormData();
    for (const pad of pads) {
      if (pad.file) {
        form.append(pad.side, pad.file, pad.file.name);
      } else {
        form.append(pad.side, await canvasBlob(pad.canvas), "drawing-" + pad.side + ".png");
      }
    }
    const response = await fetch("/api/compare", { method: "POST", body: form });
    let body = null;
    try {
      body = await response.json();
    } catch (parseError) {
      body = null;
    }
    if (!response.ok) {
      document.getElementById("result").hidden = true;
      showError(body && body.error ? body.error : "request failed: HTTP " + response.status);
      return;
    }
    showResult(body);
  } catch (error) {
    showError("cannot reach the server: " + error.message);
  } finally {
    button.disabled = false;
  }
}

const pads = Array.from(document.querySelectorAll(".pad"), setUpPad);
const compareButton = document.getElementById("compare");
compareButton.addEventListener("click", () => compare(pads, compareButton));
