// Progressive enhancement for the registry's pages; every page works without it.
(function () {
  "use strict";
  // Forms (or the button pressed) with data-confirm ask before they submit (deleting a
  // comment, revoking a token, rejecting a request).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) ||
      (form.getAttribute && form.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  // A button with data-copy="#selector" copies that element's text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });
  // A form with data-flavor-form shows only the parts (data-flavor="...") of the webhook
  // flavour chosen in its "flavor" select; without this script every part shows, labelled.
  function showFlavor(form) {
    var select = form.querySelector("select[name$=flavor]");
    if (!select) return;
    form.querySelectorAll("[data-flavor]").forEach(function (part) {
      part.hidden = part.getAttribute("data-flavor") !== select.value;
    });
  }
  document.querySelectorAll("form[data-flavor-form]").forEach(function (form) {
    showFlavor(form);
    form.addEventListener("change", function (event) {
      if (event.target.name && /flavor$/.test(event.target.name)) showFlavor(form);
    });
  });
  // Submitting twice by double-clicking would repeat a decision: disable after the first.
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) return;
    var form = event.target;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
})();
