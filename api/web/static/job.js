// The job page's line editors, made quicker: a running total while typing, and "Add more rows"
// adds a row here instead of asking the server. Without this script the page works the same way
// (the server shows the total and adds rows).
(function () {
  "use strict";

  function number(text) {
    var cleaned = String(text || "").replace(/[^0-9.\-]/g, "");
    if (!cleaned) { return null; }
    var value = Number(cleaned);
    return isFinite(value) ? value : null;
  }

  function money(value, symbol) {
    var fixed = Math.abs(value).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (value < 0 ? "-" : "") + symbol + fixed;
  }

  function field(row, column) {
    return row.querySelector('[name$="-' + column + '"]');
  }

  function recount(editor) {
    var out = editor.querySelector("[data-total-of]");
    if (!out) { return; }
    var symbol = out.getAttribute("data-symbol") || "";
    var total = 0;
    editor.querySelectorAll("fieldset.row").forEach(function (row) {
      var qty = number(field(row, "quantity") && field(row, "quantity").value);
      var price = number(field(row, "unit_price") && field(row, "unit_price").value);
      var amount = row.querySelector("[data-amount]");
      if (qty !== null && price !== null) {
        total += qty * price;
        if (amount) { amount.textContent = money(qty * price, symbol); }
      } else if (amount) {
        amount.textContent = "";
      }
    });
    out.textContent = money(total, symbol);
  }

  function addRow(editor) {
    var rows = editor.querySelectorAll("fieldset.row");
    var last = rows[rows.length - 1];
    if (!last) { return; }
    var index = rows.length;
    var copy = last.cloneNode(true);
    var before = Number(last.getAttribute("data-row"));
    copy.setAttribute("data-row", String(index));
    var legend = copy.querySelector("legend");
    if (legend) { legend.textContent = legend.textContent.replace(/\d+$/, String(index + 1)); }
    var from = "-" + before + "-";
    var to = "-" + index + "-";
    copy.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
      ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.split(from).join(to)); }
      });
      if (el.tagName === "INPUT") {
        if (el.type === "checkbox") { el.checked = true; } else { el.value = ""; }
        el.removeAttribute("readonly");
        el.classList.remove("invalid");
        el.removeAttribute("aria-invalid");
      }
      if (el.tagName === "OUTPUT") { el.textContent = ""; }
    });
    copy.querySelectorAll(".field-error, .row-note").forEach(function (el) { el.remove(); });
    last.parentNode.insertBefore(copy, last.nextSibling);
    var first = copy.querySelector("input");
    if (first) { first.focus(); }
    recount(editor);
  }

  // A refused form: start at the summary of what to fix (its links lead to each field).
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }

  document.querySelectorAll("fieldset[data-rows]").forEach(function (editor) {
    editor.addEventListener("input", function () { recount(editor); });
    var button = editor.querySelector("[data-add-row]");
    if (button) {
      button.textContent = button.textContent.replace("Add more rows", "Add a row");
      button.addEventListener("click", function (event) {
        event.preventDefault();
        addRow(editor);
      });
    }
    recount(editor);
  });
})();
