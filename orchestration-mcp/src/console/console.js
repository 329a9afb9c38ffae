// Live updates for the console: follow the event log over server-sent events and, after a
// change, fetch this page again and swap its main content. Pages work without this script.
(function () {
  "use strict";
  var body = document.body;
  var seq = body.getAttribute("data-seq");
  var status = document.getElementById("live-status");
  if (seq === null || typeof EventSource === "undefined") { return; }
  var pending = null;
  var refreshing = false;
  var again = false;

  function say(text) { if (status) { status.textContent = text; } }

  // Swapping the page while the reader types in a form would lose what they typed.
  function busy() {
    var active = document.activeElement;
    return active && active.form && (active.tagName === "INPUT" || active.tagName === "SELECT");
  }

  function refresh() {
    if (refreshing) { again = true; return; }
    if (busy()) { schedule(); return; }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html");
        var main = document.getElementById("main");
        var fresh = next.getElementById("main");
        if (main && fresh) { main.replaceWith(fresh); }
        say("Updated " + new Date().toLocaleTimeString() + ".");
      })
      .catch(function (error) { say("Could not refresh: " + error.message); })
      .then(function () {
        refreshing = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (pending !== null) { return; }
    pending = window.setTimeout(function () { pending = null; refresh(); }, 150);
  }

  var source = new EventSource("/live?after=" + encodeURIComponent(seq));
  source.addEventListener("open", function () { say("Live: following changes."); });
  source.addEventListener("change", function (event) {
    body.setAttribute("data-seq", event.lastEventId);
    schedule();
  });
  source.addEventListener("error", function () { say("Live updates paused; reconnecting."); });
})();
