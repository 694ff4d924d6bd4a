// While a sync runs, show its stage; reload the page when it ends so the summary appears.
(function () {
  const box = document.getElementById("sync");
  const line = document.getElementById("sync-status");
  if (!box || !line) return;
  // The stages a sync reports, in order (sync.py): how far along the bar is.
  const STAGES = ["starting", "Reading your short term", "Reading your medium term", "Reading your long term",
                  "Reading your library", "Reading what you played", "Reading demo history", "Saving",
                  "Adding audio features", "Preparing your charts"];
  function showProgress(stage) {
    const bar = document.getElementById("sync-progress");
    if (!bar) return;
    const step = STAGES.findIndex(function (prefix) { return stage.startsWith(prefix); });
    if (step < 0) return;
    bar.max = STAGES.length;
    bar.value = step + 1;
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 5000);
      const run = await response.json();
      if (run.status === "running") {
        line.textContent = "Running: " + run.stage + "…";
        showProgress(run.stage);
        setTimeout(poll, 1000);
      } else if (box.dataset.wasRunning) {
        window.location.reload();
      }
    } catch (error) {
      setTimeout(poll, 5000);
    }
  }
  if (line.textContent.trim().startsWith("Running")) box.dataset.wasRunning = "1";
  poll();
})();
