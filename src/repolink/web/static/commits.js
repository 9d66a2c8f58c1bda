// Manage commits: new commits appear while the first page is open. The small version endpoint
// is listened to as an event stream (the server sends the commit index's version each time it
// moves); where the stream cannot be had, the script asks it every few seconds instead. When
// the version moved, it reads this page again and swaps in the new rows, telling screen
// readers how many are new.
(function () {
  "use strict";
  var POLL_MS = 3000;
  var table = document.getElementById("commits");
  if (!table || !table.getAttribute("data-version-url") || !window.fetch) return;
  var live = document.getElementById("commits-live");
  var busy = false;

  function shasOf(body) {
    var seen = {};
    body.querySelectorAll("tr[data-sha]").forEach(function (row) {
      seen[row.getAttribute("data-sha")] = true;
    });
    return seen;
  }

  function refresh(version) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("commit-rows");
        var current = document.getElementById("commit-rows");
        if (!fresh || !current) return;
        var before = shasOf(current);
        var added = 0;
        fresh.querySelectorAll("tr[data-sha]").forEach(function (row) {
          if (!before[row.getAttribute("data-sha")]) {
            row.classList.add("is-new");
            added += 1;
          }
        });
        current.replaceWith(document.importNode(fresh, true));
        table.setAttribute("data-version", version);
        if (live && added) {
          live.textContent = added === 1 ? "1 new commit" : added + " new commits";
        }
      });
  }

  // One refresh at a time; a version heard meanwhile is refreshed to once it is done.
  var heard = null;
  function check(version) {
    if (!version || version === table.getAttribute("data-version")) return;
    if (busy) { heard = version; return; }
    busy = true;
    refresh(version)
      .catch(function () { /* the server is away for a moment: the next version tries again */ })
      .then(function () {
        busy = false;
        var next = heard;
        heard = null;
        if (next) check(next);
      });
  }

  function poll() {
    if (busy || document.hidden) return;
    fetch(table.getAttribute("data-version-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer) check(answer.version); })
      .catch(function () { /* the server is away for a moment: the next poll tries again */ });
  }

  function startPolling() { window.setInterval(poll, POLL_MS); }

  if (!window.EventSource) { startPolling(); return; }
  var stream = new EventSource(table.getAttribute("data-version-url"));
  stream.addEventListener("version", function (event) {
    var answer = JSON.parse(event.data);
    check(answer.version);
  });
  // EventSource connects again by itself after a network error or the server's restart; it
  // gives up (CLOSED) only when refused, and then the page polls as it always could.
  stream.addEventListener("error", function () {
    if (stream.readyState === EventSource.CLOSED) startPolling();
  });
})();
