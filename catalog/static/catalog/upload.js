// The upload form: a CSV dropped anywhere on the drop zone goes into the file input.
(function () {
  "use strict";
  var zone = document.querySelector("[data-drop]");
  var input = document.getElementById("file");
  var hint = document.getElementById("file-hint");
  if (!zone || !input) return;

  function show() {
    if (input.files && input.files.length) hint.textContent = "Selected: " + input.files[0].name;
  }
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      show();
    }
  });
  input.addEventListener("change", show);

  // After a refusal, take keyboard and screen-reader focus to the list of problems.
  var errors = document.getElementById("errors");
  if (errors) errors.focus();
})();
