// The board stays current without a reload: every 12 s (while the tab is visible) ask
// /jobs/board.fragment for the same filters and swap the board in place when it changed.
// Without this script the page is complete: its Refresh link reloads it.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.fetch) { return; }
  var url = board.getAttribute("data-fragment");
  var every = 12000;
  var timer = null;
  var busy = false;

  function focusedHref() {
    var active = document.activeElement;
    if (active && board.contains(active) && active.getAttribute) {
      return active.getAttribute("href");
    }
    return null;
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("board " + response.status); }
        var stamp = response.headers.get("X-Board-Stamp");
        return response.text().then(function (html) { return { stamp: stamp, html: html }; });
      })
      .then(function (fresh) {
        if (fresh.stamp && fresh.stamp === board.getAttribute("data-stamp")) {
          var holder = document.createElement("div");
          holder.innerHTML = fresh.html;
          var clock = holder.querySelector(".board-updated");
          var mine = board.querySelector(".board-updated");
          if (clock && mine) { mine.textContent = clock.textContent; }
          return;
        }
        var href = focusedHref();
        board.innerHTML = fresh.html;
        board.setAttribute("data-stamp", fresh.stamp || "");
        if (href) {
          var links = board.querySelectorAll("a[href]");
          for (var i = 0; i < links.length; i++) {
            if (links[i].getAttribute("href") === href) { links[i].focus(); break; }
          }
        }
      })
      .catch(function () { /* try again at the next tick; the Refresh link still works */ })
      .then(function () { busy = false; });
  }

  function start() {
    if (timer === null) { timer = window.setInterval(refresh, every); }
  }
  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { refresh(); start(); }
  });
  if (!document.hidden) { start(); }
})();
