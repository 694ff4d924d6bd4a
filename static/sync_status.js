// While a sync runs, show its stage; reload the page when it ends so the summary appears.
(function () {
  const box = document.getElementById("sync");
  const line = document.getElementById("sync-status");
  if (!box || !line) return;
  async function poll() {
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return setTimeout(poll, 5000);
      const run = await response.json();
      if (run.status === "running") {
        line.textContent = "Running: " + run.stage + "…";
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
