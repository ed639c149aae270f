// Tether dashboard: the few behaviours that need a script. Every page works without it
// (forms post, links navigate); this adds confirmations, copy buttons, and keeps a page
// that showed a secret from being posted again by a reload. No inline script exists, so a
// strict Content-Security-Policy (script-src 'self') holds.
"use strict";

(function () {
  // A page that answers a form post with a one-time secret rewrites its history entry to the
  // plain GET of the same page: reloading then shows the list, never re-posts the form.
  var replaceUrl = document.body.getAttribute("data-replace-url");
  if (replaceUrl && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", replaceUrl);
  }

  // Confirmation before destructive actions: <form data-confirm="..." data-confirm-title="..."
  // data-confirm-action="Revoke key">. A <dialog> keeps focus inside and closes with Escape.
  var dialog = document.getElementById("confirm-dialog");
  var pending = null;

  function ask(form, submitter) {
    if (!dialog || typeof dialog.showModal !== "function") {
      return window.confirm(form.getAttribute("data-confirm"));
    }
    pending = { form: form, submitter: submitter };
    document.getElementById("confirm-title").textContent =
      form.getAttribute("data-confirm-title") || "Are you sure?";
    document.getElementById("confirm-message").textContent = form.getAttribute("data-confirm");
    var ok = document.getElementById("confirm-ok");
    ok.textContent = form.getAttribute("data-confirm-action") || "Confirm";
    ok.className = form.hasAttribute("data-confirm-safe") ? "btn btn-primary" : "btn btn-danger";
    dialog.returnValue = "";
    dialog.showModal();
    // The safe choice has the focus: Enter alone never destroys anything.
    document.getElementById("confirm-cancel").focus();
    return null;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (form.getAttribute("data-confirmed") === "yes") return;
    var answer = ask(form, event.submitter);
    if (answer === true) return;
    event.preventDefault();
  });

  if (dialog) {
    dialog.addEventListener("close", function () {
      var current = pending;
      pending = null;
      if (!current || dialog.returnValue !== "confirm") return;
      current.form.setAttribute("data-confirmed", "yes");
      if (typeof current.form.requestSubmit === "function") {
        current.form.requestSubmit(current.submitter || undefined);
      } else {
        current.form.submit();
      }
    });
  }

  // Copy buttons: <button data-copy="#element-id">. The clipboard API needs a secure context;
  // elsewhere the text is selected and copied the old way.
  function announce(button, text) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = text;
    button.classList.add("copied");
    var status = document.getElementById("copy-status");
    if (status) status.textContent = text;
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var value = "value" in target ? target.value : target.textContent;
    function fallback() {
      if (typeof target.select === "function") {
        target.focus();
        target.select();
      }
      var done = false;
      try {
        done = document.execCommand("copy");
      } catch (e) {
        done = false;
      }
      announce(button, done ? "Copied" : "Press Ctrl+C to copy");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(function () {
        announce(button, "Copied");
      }, fallback);
    } else {
      fallback();
    }
  });
})();
