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
  // Times: the server writes UTC (<time datetime="...Z">); show them in the browser's time zone,
  // with the UTC time on hover. Also for parts htmx swaps in.
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  var zoneName = function (moment) {
    var part = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(moment)
      .filter(function (p) { return p.type === "timeZoneName"; })[0];
    return part ? part.value : "";
  };
  function localizeTimes(root) {
    var times = root.querySelectorAll ? root.querySelectorAll("time[datetime]") : [];
    Array.prototype.forEach.call(times, function (el) {
      if (el.dataset.local) return;
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      el.title = el.textContent.trim();
      el.textContent = moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) + " " +
        pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + ":" + pad(moment.getSeconds()) + " " + zoneName(moment);
      el.dataset.local = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });
  document.addEventListener("htmx:load", function (event) { localizeTimes(event.detail.elt); });
})();
