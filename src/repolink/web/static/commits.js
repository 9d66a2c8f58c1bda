// Manage commits: new commits appear while the first page is open. Every few seconds the
// script asks the small version endpoint whether the commit index changed; when it did, it
// reads this page again and swaps in the new rows, telling screen readers how many are new.
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

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(table.getAttribute("data-version-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (answer && answer.version && answer.version !== table.getAttribute("data-version")) {
          return refresh(answer.version);
        }
      })
      .catch(function () { /* the server is away for a moment: the next poll tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(poll, POLL_MS);
})();
