// Create execution: picking a commit in the dropdown shows its details at once (the page
// shows them without a script too, after "Show commit").
(function () {
  "use strict";
  var select = document.getElementById("commit");
  if (!select) return;

  function put(id, text) {
    var element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    if (!option || !option.value) return;
    put("picked-sha", option.value);
    put("picked-subject", option.getAttribute("data-subject"));
    put("picked-author", option.getAttribute("data-author"));
    var time = document.querySelector("#picked-time time");
    if (time) {
      time.textContent = option.getAttribute("data-ago");
      time.setAttribute("title", option.getAttribute("data-time"));
      time.setAttribute("datetime", option.getAttribute("data-iso"));
    }
    put("picked-refs", option.getAttribute("data-refs") || "none");
  });
})();
