// capgate admin console: progressive enhancement only; every page works without this file.
"use strict";

// Copy buttons: <button data-copy="ID"> copies the text of the element with that id.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("aria-controls") || "");
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      if (status) status.textContent = "Copied.";
    }, function () {
      if (status) status.textContent = "Copy failed: select the text and copy it by hand.";
    });
  });
});

// A page that shows a secret once replaces its own address, so reloading it never posts the form again.
var replace = document.querySelector("[data-replace-url]");
if (replace && window.history && window.history.replaceState) {
  window.history.replaceState(null, "", replace.getAttribute("data-replace-url"));
}

// Forms marked data-confirm ask before they do something that cannot be undone.
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
});

// "Only these tools" reveals the picker; "All tools" hides it.
document.querySelectorAll("input[name=tools_mode]").forEach(function (radio) {
  var picker = document.getElementById(radio.getAttribute("data-picker") || "");
  function sync() {
    var chosen = document.querySelector("input[name=tools_mode]:checked");
    if (picker && chosen) picker.hidden = chosen.value === "all";
  }
  radio.addEventListener("change", sync);
  sync();
});
