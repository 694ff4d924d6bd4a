// The import page: drag and drop, upload each file with its own progress, start the
// import, then poll its status (rows, rate, time left) until it ends, and show its page.
// Without this script the form posts the files and the server answers with the same pages.
(function () {
  const byId = function (id) { return document.getElementById("import-" + id); };
  const [form, input, drop, chosen, uploadStatus, uploadError, startButton, progress, bar, stage, rows, rate, eta] = [
    "form", "files", "drop", "chosen", "upload-status", "upload-error", "start", "progress", "bar", "stage", "rows",
    "rate", "eta",
  ].map(byId);
  const csrf = form ? form.querySelector("input[name=csrf_token]").value : "";
  let files = [];

  function showFiles(list) {
    files = Array.from(list || []);
    chosen.textContent = "";
    for (const file of files) {
      const item = document.createElement("li");
      item.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)).toLocaleString() + " kB)";
      chosen.appendChild(item);
    }
  }

  function fail(message) {
    uploadError.textContent = message;
    uploadError.hidden = false;
    startButton.disabled = false;
    uploadStatus.textContent = "";
  }

  function errorMessage(xhr) {
    try {
      return JSON.parse(xhr.responseText).error.message;
    } catch (error) {
      return "The upload failed (" + (xhr.status || "no answer") + "). Please try again.";
    }
  }

  function send(url, body, name, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      if (name) {
        xhr.setRequestHeader("X-File-Name", encodeURIComponent(name));
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
      }
      if (onProgress) xhr.upload.onprogress = onProgress;
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else reject(new Error(errorMessage(xhr)));
      };
      xhr.onerror = function () { reject(new Error("The connection broke during the upload. Please try again.")); };
      xhr.send(body);
    });
  }

  async function upload(event) {
    event.preventDefault();
    uploadError.hidden = true;
    if (!files.length) return fail("Choose the zip Spotify sent you, or the JSON files in it.");
    startButton.disabled = true;
    let importId = null;
    let startUrl = null;
    try {
      for (const [n, file] of files.entries()) {
        const url = form.dataset.uploadUrl + (importId ? "?import=" + importId : "");
        const answer = await send(url, file, file.name, function (e) {
          if (e.lengthComputable) {
            uploadStatus.textContent = "Uploading " + file.name + " (" + (n + 1) + " of " + files.length + "): "
              + Math.round((100 * e.loaded) / e.total) + "%";
          }
        });
        importId = answer.import_id;
        startUrl = answer.start_url;
      }
      uploadStatus.textContent = "Uploaded; starting the import…";
      const started = await send(startUrl, null, null, null);
      history.replaceState(null, "", started.page_url);
      watch(started.status_url, started.page_url);
    } catch (error) {
      fail(error.message);
    }
  }

  function show(status) {
    progress.dataset.status = status.status;
    stage.textContent = status.stage || (status.status === "queued" ? "Waiting for a worker" : "");
    rows.textContent = (status.rows_done || 0).toLocaleString();
    rate.textContent = status.rows_per_second ? status.rows_per_second.toLocaleString() + " rows/s" : "–";
    eta.textContent = status.eta_seconds != null ? "about " + status.eta_seconds + " s" : "–";
    if (status.share != null) bar.value = status.share;
  }

  function watch(statusUrl, pageUrl) {
    progress.hidden = false;
    progress.dataset.statusUrl = statusUrl;
    const uploadCard = byId("upload");
    if (uploadCard) uploadCard.hidden = true;
    async function poll() {
      try {
        const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return setTimeout(poll, 2000);
        const status = await response.json();
        show(status);
        if (status.status === "succeeded" || status.status === "failed") {
          window.location.assign(pageUrl);  // the server renders the summary or the error
          return;
        }
        setTimeout(poll, 700);
      } catch (error) {
        setTimeout(poll, 2000);
      }
    }
    poll();
  }

  if (form) {
    input.addEventListener("change", function () { showFiles(input.files); });
    ["dragenter", "dragover"].forEach(function (name) {
      drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      drop.addEventListener(name, function () { drop.classList.remove("dragging"); });
    });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      showFiles(e.dataTransfer.files);
    });
    form.addEventListener("submit", upload);
  }
  if (progress && progress.dataset.statusUrl) watch(progress.dataset.statusUrl, progress.dataset.pageUrl);
})();
