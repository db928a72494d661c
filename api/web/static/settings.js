// Settings pages, made a little better with JavaScript (they work fully without it):
// a refused form's summary is focused, the colour picker and the colour's text field follow
// each other, a logo over the size limit is refused before it is uploaded, in words next
// to the field, and a field row of the field editors (closeout, resulting) shows its options
// box only when it is a dropdown.
(function () {
  "use strict";

  // A refused form: the summary of its problems takes the focus, so it is read first.
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
  // A dry run's answer (the resulting page) is read first too, when nothing was refused.
  var tried = document.getElementById("dry-run");
  if (tried && !summary) { tried.focus(); }

  var text = document.getElementById("primary_color");
  var picker = document.getElementById("primary_color_picker");
  if (text && picker) {
    picker.addEventListener("input", function () { text.value = picker.value; });
    text.addEventListener("input", function () {
      if (/^#[0-9a-fA-F]{6}$/.test(text.value.trim())) { picker.value = text.value.trim().toLowerCase(); }
    });
  }

  var logo = document.getElementById("logo");
  if (logo) {
    var limit = parseInt(logo.getAttribute("data-max-bytes"), 10);
    var note = document.createElement("p");
    note.className = "field-error";
    note.id = "logo-size-error";
    note.hidden = true;
    logo.parentNode.insertBefore(note, logo);
    logo.addEventListener("change", function () {
      var file = logo.files && logo.files[0];
      var tooBig = file && limit && file.size > limit;
      note.hidden = !tooBig;
      note.textContent = tooBig
        ? "The logo is larger than 1 MiB (" + Math.ceil(file.size / 1024) + " KiB); choose a smaller image."
        : "";
      logo.setCustomValidity(tooBig ? note.textContent : "");
      var described = (logo.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id !== note.id;
      });
      if (tooBig) { described.push(note.id); }
      logo.setAttribute("aria-describedby", described.join(" "));
      if (tooBig) { logo.setAttribute("aria-invalid", "true"); } else { logo.removeAttribute("aria-invalid"); }
    });
    // The form is novalidate (the server says what is wrong); this one check stops the upload.
    logo.form.addEventListener("submit", function (event) {
      if (!logo.checkValidity()) { event.preventDefault(); logo.focus(); }
    });
  }

  // Field rows: "Options" belongs to dropdowns. Hidden for other types unless it holds text
  // (then the person sees what would be refused, and why). Without JavaScript it is always shown.
  Array.prototype.forEach.call(document.querySelectorAll(".field-row"), function (row) {
    var type = row.querySelector("select[name$='-type']");
    var box = row.querySelector(".field-options");
    var options = box && box.querySelector("textarea");
    if (!type || !options) { return; }
    function show() { box.hidden = type.value !== "dropdown" && !options.value.trim(); }
    type.addEventListener("change", show);
    show();
  });
})();
