// The Send page, made better when scripts run (it works fully without): after a refusal the
// error summary takes the focus, after a preview the preview does, so a keyboard or screen
// reader user lands on what changed.
(function () {
  "use strict";
  var target = document.querySelector(".error-summary") || document.getElementById("preview");
  if (target) {
    target.focus();
  }
})();
