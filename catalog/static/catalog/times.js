// Times are written in UTC ("2026-11-29 15:04 UTC"); shown here in the reader's own zone, with its name.
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
})();
