// Live progress for the request pages: polls our own status endpoints, no framework, no build step.
(function () {
  "use strict";
  var INTERVAL_MS = 1000;

  var STATE_NAMES = {
    pending: "Pending",
    processing: "Processing",
    completed: "Completed",
    completed_with_errors: "Completed with errors",
    failed: "Failed",
    cancelled: "Cancelled"
  };

  function showProgress(root, status, progress) {
    var bar = root.querySelector("progress");
    var percent = root.querySelector("[data-percent]");
    if (bar) {
      if (status) bar.className = "bar-" + status;
      bar.value = progress.percent;
      bar.setAttribute("aria-valuetext", progress.percent + "%");
    }
    if (percent) percent.textContent = progress.percent + "%";
    var state = root.querySelector("[data-state]");
    if (state && status) {
      state.textContent = STATE_NAMES[status] || status;
      state.className = "state state-" + status;
    }
  }

  function span(className, text) {
    var el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  function poll(url, onData) {
    var stopped = false;
    var delay = INTERVAL_MS;
    function tick() {
      if (stopped) return;
      if (document.hidden) { setTimeout(tick, delay); return; }
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          delay = INTERVAL_MS;
          if (onData(data) === false) stopped = true;
        })
        .catch(function () { delay = Math.min(delay * 2, 15000); })  // server busy or restarting
        .then(function () { if (!stopped) setTimeout(tick, delay); });
    }
    setTimeout(tick, delay);
  }

  // One request's page: the bar and counts every poll; when they change, the rest of the page
  // (rows, thumbnails, totals, the CSV link) is fetched again and swapped in, without a reload.
  function refreshBody() {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-body");
        var body = document.getElementById("live-body");
        if (fresh && body) body.replaceWith(fresh);
      });
  }

  var request = document.querySelector("[data-request]");
  if (request && request.dataset.completed !== "true") {
    var lastSettled = -1;
    var refreshing = false;
    poll(request.dataset.statusUrl, function (data) {
      var current = document.querySelector("[data-request]");
      showProgress(current, data.status, data.progress);
      ["done", "failed", "reused", "cancelled"].forEach(function (name) {
        var cell = current.querySelector('[data-count="' + name + '"]');
        if (cell) cell.textContent = data.progress[name];
      });
      var settled = data.progress.done + data.progress.failed;
      if (data.completed) {
        refreshBody().catch(function () { window.location.reload(); });
        return false;
      }
      if (settled !== lastSettled && !refreshing) {
        lastSettled = settled;
        refreshing = true;
        refreshBody().catch(function () {}).then(function () { refreshing = false; });
      }
      return true;
    });
  }

  // The list: every unfinished request's bar, in one call per poll.
  var table = document.querySelector("table.requests[data-live]");
  if (table && table.dataset.live) {
    var live = table.dataset.live.split(",");
    var base = table.dataset.progressUrl;
    poll(base + "?ids=" + live.join(","), function (data) {
      live = live.filter(function (id) {
        var row = document.getElementById("r-" + id);
        var found = data[id];
        if (!row || !found) return false;
        showProgress(row, found.status, found);
        var counts = row.querySelector("[data-counts]");
        if (counts) {
          counts.replaceChildren(span("count-done", found.done + " done"));
          if (found.failed) counts.append(", ", span("count-failed", found.failed + " failed"));
          counts.append(" of " + found.images);
        }
        var result = row.querySelector("[data-result-cell]");
        var detail = row.querySelector("a");
        if (found.completed && result && detail) {
          var link = document.createElement("a");
          link.href = detail.getAttribute("href") + "result.csv";
          link.textContent = "Result CSV";
          result.replaceChildren(link);
        }
        return !found.completed;
      });
      return live.length > 0;
    });
  }
})();
