// Small behaviours htmx does not cover. Served as a file: the CSP allows no inline script.
(function () {
  "use strict";

  // Warn before leaving a settings form with unsaved changes; saving clears the mark.
  function markDirty(event) {
    var form = event.target.closest && event.target.closest("form[data-warn-unsaved]");
    if (form) form.dataset.dirty = "1";
  }
  document.addEventListener("input", markDirty);
  document.addEventListener("change", markDirty);
  document.addEventListener("submit", function (event) {
    if (event.target.matches("form[data-warn-unsaved]")) delete event.target.dataset.dirty;
  });
  window.addEventListener("beforeunload", function (event) {
    if (document.querySelector("form[data-warn-unsaved][data-dirty]")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // An htmx request that fails would otherwise change nothing on the page: say so.
  function showError(text) {
    var box = document.getElementById("request-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("request-error");
    if (box) box.hidden = true;
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    showError(status === 400
      ? "The request was refused (400): reload the page and try again."
      : "The server answered " + status + ". Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showError("The server could not be reached. Check your connection and try again.");
  });

  // Copy buttons: data-copy names the input whose value goes to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    if (!input) return;
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
