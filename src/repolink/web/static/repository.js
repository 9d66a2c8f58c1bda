// The Repository page: live checks of the SSH URL and of a pasted private key, the
// connection state and the fetch's progress streamed (or polled) after a save or a fetch, the
// doctor's checklist loaded in place. Every form works without this script.
(function () {
  "use strict";

  var root = document.getElementById("repository");
  if (!root) return;
  var form = document.getElementById("connect-form");
  var tokenField = document.querySelector('input[name="csrf_token"]');
  var token = tokenField ? tokenField.value : "";

  function post(url, fields) {
    var body = new FormData();
    Object.keys(fields).forEach(function (name) { body.append(name, fields[name]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": token, "Accept": "application/json" }
    }).then(function (response) { return response.json(); });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function errorBox(error, id) {
    var box = element("div", "field-error");
    if (id) box.id = id;
    box.setAttribute("role", "alert");
    var message = element("p", "error-message");
    message.appendChild(element("span", "error-code", error.code));
    message.appendChild(document.createTextNode(" " + error.message));
    box.appendChild(message);
    if (error.hint) {
      var hint = element("p", "error-hint");
      hint.appendChild(element("strong", "", "Fix:"));
      hint.appendChild(document.createTextNode(" " + error.hint));
      box.appendChild(hint);
    }
    return box;
  }

  function debounce(work, delay) {
    var timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(work, delay);
    };
  }

  // A trust form may not sit inside the connect form (forms do not nest): it lives in
  // #trust-forms, outside it, and its button beside the fingerprint names it by id.
  var trustCount = 0;
  function trustButton(answer, presented) {
    var trust = element("form", "");
    trustCount += 1;
    trust.id = "trust-form-" + trustCount;
    trust.method = "post";
    trust.action = form.getAttribute("action") + "/trust-host";
    [["csrf_token", token], ["host", answer.host], ["port", String(answer.port)],
     ["fingerprint", presented.fingerprint], ["url", document.getElementById("url").value]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = pair[0]; input.value = pair[1];
      trust.appendChild(input);
    });
    document.getElementById("trust-forms").appendChild(trust);
    var button = element("button", "button small", "Trust this fingerprint");
    button.type = "submit";
    button.setAttribute("form", trust.id);
    button.setAttribute("aria-label", "Trust this fingerprint: " + presented.key_type + " " + presented.fingerprint);
    return button;
  }

  function showUrlCheck(answer, box, field) {
    box.textContent = "";
    document.getElementById("trust-forms").textContent = "";
    field.removeAttribute("aria-invalid");
    if (!answer.ok) {
      field.setAttribute("aria-invalid", "true");
      box.appendChild(errorBox(answer.error, "url-live-error"));
      if (answer.suggestion) {
        var use = element("button", "button small", "Use " + answer.suggestion);
        use.type = "button";
        use.id = "use-suggestion";
        use.addEventListener("click", function () {
          field.value = answer.suggestion;
          field.focus();
          checkUrl();
        });
        box.appendChild(use);
      }
      return;
    }
    if (answer.host_key === "trusted") {
      box.appendChild(element("p", "badge ok", "Host key trusted"));
      answer.fingerprints.forEach(function (value) {
        box.appendChild(element("code", "fingerprint", value));
      });
    } else if (answer.presented) {
      box.appendChild(element("p", "", "The host " + answer.host + " is not known yet. It presents "
        + "these keys; check a fingerprint with the host's owner, then trust it:"));
      answer.presented.forEach(function (presented) {
        var row = element("div", "presented");
        row.appendChild(element("span", "", presented.key_type + " "));
        row.appendChild(element("code", "fingerprint", presented.fingerprint));
        row.appendChild(trustButton(answer, presented));
        box.appendChild(row);
      });
    } else if (answer.scan_error) {
      box.appendChild(errorBox(answer.scan_error));
    } else {
      box.appendChild(element("p", "badge warn", "Host key not trusted yet: a site admin trusts it under Known hosts."));
    }
  }

  var urlField = document.getElementById("url");
  var urlBox = document.getElementById("url-check");
  function checkUrl() {
    if (!form || !urlField.value.trim()) { if (urlBox) urlBox.textContent = ""; return; }
    post(form.getAttribute("data-check-url"), { url: urlField.value }).then(function (answer) {
      showUrlCheck(answer, urlBox, urlField);
    });
  }
  if (form && urlField) urlField.addEventListener("input", debounce(checkUrl, 400));

  var keyField = document.getElementById("private_key");
  var keyBox = document.getElementById("key-check");
  var passField = document.getElementById("passphrase");
  function checkKey() {
    if (!form || !keyField.value.trim()) { keyBox.textContent = ""; return; }
    document.getElementById("key-source-paste").checked = true;
    post(form.getAttribute("data-check-key"), {
      private_key: keyField.value, passphrase: passField ? passField.value : ""
    }).then(function (answer) {
      keyBox.textContent = "";
      if (!answer.ok) {
        keyField.setAttribute("aria-invalid", "true");
        keyBox.appendChild(errorBox(answer.error, "key-live-error"));
        return;
      }
      keyField.removeAttribute("aria-invalid");
      var ok = element("p", "", answer.key_type + " key ");
      ok.appendChild(element("code", "fingerprint", answer.fingerprint_sha256));
      keyBox.appendChild(ok);
      if (answer.repairs.length) {
        keyBox.appendChild(element("p", "muted", "Repaired: " + answer.repairs.join(", ")));
      }
    });
  }
  if (form && keyField) {
    keyField.addEventListener("input", debounce(checkKey, 300));
    if (passField) passField.addEventListener("input", debounce(checkKey, 300));
  }

  // The connection's state and the latest fetch's, shown without a reload.
  var stateUrl = root.getAttribute("data-state-url");
  var badge = document.getElementById("connection-state");
  var progress = document.getElementById("fetch-progress");
  var errorPanel = document.getElementById("connection-error");

  function showState(answer) {
    if (!answer.connected || !badge) return;
    badge.textContent = answer.state;
    badge.className = "badge " + (answer.state === "ok" ? "ok" : answer.state === "failed" ? "danger" : "warn");
    var commits = document.getElementById("connection-commits");
    if (commits) commits.textContent = String(answer.commits);
    if (errorPanel) {
      if (answer.error) {
        document.getElementById("connection-error-code").textContent = answer.error.code;
        document.getElementById("connection-error-message").textContent = answer.error.message;
        document.getElementById("connection-error-hint").textContent = answer.error.hint;
        errorPanel.hidden = false;
      } else {
        errorPanel.hidden = true;
      }
    }
    var running = answer.fetch && !answer.fetch.finished;
    if (progress) progress.textContent = describeFetch(answer.fetch);
    return running;
  }

  // The latest fetch: while it runs, how far git is (phase and percent, as git reports
  // them); once finished, what it brought — or that it failed (the fix is in the panel).
  function describeFetch(run) {
    if (!run) return "";
    if (!run.finished) {
      if (run.state === "queued") return "Fetch queued…";
      return run.progress ? "Fetching: " + run.progress.line : "Fetch running…";
    }
    if (run.state === "done") {
      var count = run.new_commits;
      return "Last fetch: " + count + (count === 1 ? " new commit" : " new commits");
    }
    if (run.state === "failed") return "Last fetch failed: " + (run.error_code || "error");
    return "Last fetch " + run.state;
  }

  // Where the event stream cannot be had: polled while a fetch is queued or running, and
  // ``extra`` more times after (a save's fetch may not be visible at the first look).
  function poll(extra) {
    fetch(stateUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        var running = showState(answer);
        if (running || extra > 0) {
          window.setTimeout(function () { poll(running ? extra : extra - 1); }, 1000);
        }
      });
  }
  // The state as an event stream: the server sends it again each time it changes, whichever
  // server process the fetch was asked of or run by. EventSource connects again by itself
  // after a network error or the server's restart; refused (CLOSED), the page polls.
  var streaming = false;
  function listen() {
    var stream = new EventSource(stateUrl);
    streaming = true;
    stream.addEventListener("state", function (event) { showState(JSON.parse(event.data)); });
    stream.addEventListener("error", function () {
      if (stream.readyState !== EventSource.CLOSED) return;
      streaming = false;
      poll(3);
    });
  }
  if (badge) {
    if (window.EventSource) listen(); else poll(3);
  }

  // Generate SSH key with "Download the private key": the answer is the key file itself.
  // Taken here as a file for the browser to save, then the page is opened again to show the
  // new key's public half.
  var generateForm = document.getElementById("generate-form");
  var download = document.getElementById("download");
  if (generateForm && download) {
    generateForm.addEventListener("submit", function (event) {
      if (!download.checked) return;
      event.preventDefault();
      fetch(generateForm.getAttribute("action"), {
        method: "POST", body: new FormData(generateForm), credentials: "same-origin"
      }).then(function (response) {
        var disposition = response.headers.get("Content-Disposition") || "";
        var named = /filename="([^"]+)"/.exec(disposition);
        if (!response.ok || !named) {
          // Refused (nothing was generated): the form is sent as without this script, and
          // the page comes back with the error beside its field.
          generateForm.submit();
          return;
        }
        return response.blob().then(function (blob) {
          var link = document.createElement("a");
          link.href = URL.createObjectURL(blob);
          link.download = named[1];
          document.body.appendChild(link);
          link.click();
          window.setTimeout(function () {
            URL.revokeObjectURL(link.href);
            window.location.assign(window.location.pathname);
          }, 500);
        });
      });
    });
  }

  // The doctor: its form's answer is this page with the checklist; the checklist is put in
  // place. An answer without one (an error page) is shown as the form would show it.
  var doctorForm = document.getElementById("doctor-form");
  var doctorResult = document.getElementById("doctor-result");
  if (doctorForm && doctorResult) {
    doctorForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = doctorForm.querySelector("button");
      button.disabled = true;
      doctorResult.textContent = "";
      doctorResult.appendChild(element("p", "muted", "The doctor is checking the connection…"));
      fetch(doctorForm.getAttribute("action"), {
        method: "POST", body: new FormData(doctorForm), credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (response) { return response.text(); }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("doctor-result");
        button.disabled = false;
        if (!fresh || !fresh.firstElementChild) { doctorForm.submit(); return; }
        // The children move, not the live region itself: screen readers hear the news.
        doctorResult.textContent = "";
        Array.prototype.slice.call(fresh.children).forEach(function (child) {
          doctorResult.appendChild(document.importNode(child, true));
        });
        var title = document.getElementById("doctor-title");
        if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
      }, function () { button.disabled = false; doctorForm.submit(); });
    });
  }

  var fetchForm = document.getElementById("fetch-form");
  if (fetchForm) {
    fetchForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (progress) progress.textContent = "Fetch queued…";
      post(fetchForm.getAttribute("action"), {}).then(function () {
        if (!streaming) poll(3);
      });
    });
  }
})();
