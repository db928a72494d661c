// /jobs/new and /clients/{id}, made better when scripts run (both work fully without):
// - after a refusal the error summary (or the likely-duplicate warning) takes the focus, so a
//   keyboard or screen reader user lands on what needs doing;
// - on /jobs/new the client search filters as you type: the page the Search button would give
//   is fetched, and its results put in place of the old ones (nothing else on the page changes,
//   so what was typed stays).
(function () {
  "use strict";
  var first = document.querySelector(".error-summary, .duplicate-warning");
  if (first) {
    first.focus();
  }

  var box = document.querySelector("input[data-client-search]");
  var results = document.getElementById("client-results");
  if (!box || !results) {
    return;
  }
  var timer = null;
  var asked = 0;
  box.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(search, 250);
  });

  function search() {
    var q = box.value.trim();
    var ask = ++asked;
    if (q.length < 2) {
      results.replaceChildren();
      return;
    }
    var url = box.form.getAttribute("action") + "?q=" + encodeURIComponent(q);
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) {
        if (html === null || ask !== asked) {
          return;
        }
        var page = new DOMParser().parseFromString(html, "text/html");
        var found = page.getElementById("client-results");
        if (found) {
          results.replaceChildren.apply(results, Array.from(found.childNodes));
        }
      })
      .catch(function () {
        /* the Search button still works */
      });
  }
})();
