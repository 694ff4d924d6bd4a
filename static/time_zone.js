// Tells the server this browser's time zone, once: when the person has none stored yet
// (the server then reads days and hours in it, so the page is reloaded). Later, a
// different zone (travel) only pre-fills the form; changing it stays the person's choice.
(function () {
  "use strict";
  const form = document.getElementById("time-zone-form");
  if (!form || !window.fetch || !window.Intl) return;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!browserZone) return;
  const input = form.querySelector("input[name=time_zone]");
  const stored = form.dataset.stored;
  if (stored === browserZone) return;
  input.value = browserZone;
  if (stored !== "" || sessionStorage.getItem("mtm-time-zone-sent")) return;
  sessionStorage.setItem("mtm-time-zone-sent", "1");  // one try per visit, even if it fails
  fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (body) { if (body && body.changed) window.location.reload(); })
    .catch(function () { /* the form is still there to send by hand */ });
})();
