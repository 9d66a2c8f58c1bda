// repolink's own script: progressive enhancement only; every form works without it.
(function () {
  "use strict";

  // Copy buttons: <button class="copy" data-copy-target="ID"> copies the element's text (or
  // a field's value) and says so for a moment, also to screen readers.
  function textOf(target) {
    if ("value" in target && typeof target.value === "string") return target.value;
    return target.textContent.trim();
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    var text = textOf(target);
    var write = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text)
      : fallbackCopy(text);
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    write.then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "");
    }, function () {
      button.textContent = "Select and copy by hand";
    }).then(function () {
      window.setTimeout(function () {
        button.textContent = label;
        button.removeAttribute("data-copied");
      }, 2000);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy[data-copy-target]");
    if (button) copy(button);
  });

  // The user menu (<details>) closes with Escape and when focus or a click leaves it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
})();
