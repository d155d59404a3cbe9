// Small things every page does, no framework, no build step.
// 1. Times are written in UTC ("2026-11-29 15:04 UTC"); shown here in the reader's own zone, named.
// 2. A "before" picture that is not there (its file removed since the page was made) becomes a plain
//    "no preview" box, never a broken-image icon.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = el.textContent;  // the UTC time stays one hover away
      el.textContent = format.format(when);
      el.removeAttribute("data-local");
    });
  }
  localise(document);
  // The request page swaps its body in as it changes: localise what comes in.
  new MutationObserver(function () { localise(document); }).observe(document.body, { childList: true, subtree: true });

  function noPreview(img) {
    var box = document.createElement("span");
    box.className = "no-preview";
    box.textContent = "No preview";
    img.replaceWith(box);
  }
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (img instanceof HTMLImageElement && img.hasAttribute("data-before")) noPreview(img);
  }, true);
  // Those that failed before this script ran (it is deferred): complete, yet nothing decoded.
  document.querySelectorAll("img[data-before]").forEach(function (img) {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) noPreview(img);
  });
})();
