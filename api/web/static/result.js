// The job's Result form, made shorter: only the chosen type's fields (Sale or No Sale) show.
// Without this script both sets show, each under its own heading, and the server reads only the
// chosen type's (api/web/result_form.py), so the form works the same.
(function () {
  "use strict";

  function update(form) {
    var chosen = form.querySelector('input[name="type"]:checked');
    form.querySelectorAll("fieldset[data-result-type]").forEach(function (set) {
      var shown = chosen !== null && set.getAttribute("data-result-type") === chosen.value;
      set.hidden = !shown;
    });
  }

  document.querySelectorAll("form[data-result-form]").forEach(function (form) {
    form.querySelectorAll('input[name="type"]').forEach(function (radio) {
      radio.addEventListener("change", function () { update(form); });
    });
    update(form);
  });
})();
