// The reset form's little helpers: live policy hints, a match check, show/hide.
// Served as a file (not inline) so the Content-Security-Policy can stay 'self' only.
// The server checks everything again; this only helps people type.
(function () {
  "use strict";
  var password = document.getElementById("password");
  var confirm = document.getElementById("password_confirm");
  var match = document.getElementById("match");
  if (!password || !confirm) return;

  var checks = {
    length: function (v) { return v.length >= 8; },
    lower: function (v) { return /[a-z]/.test(v); },
    upper: function (v) { return /[A-Z]/.test(v); },
    digit: function (v) { return /[0-9]/.test(v); },
    symbol: function (v) { return /[^A-Za-z0-9]/.test(v); },
  };

  function update() {
    document.querySelectorAll("[data-check]").forEach(function (item) {
      item.classList.toggle("met", checks[item.dataset.check](password.value));
    });
    var mismatch = confirm.value !== "" && confirm.value !== password.value;
    match.textContent = mismatch ? "The two passwords don't match yet." : "";
    match.classList.toggle("bad", mismatch);
    confirm.setAttribute("aria-invalid", mismatch ? "true" : "false");
  }
  password.addEventListener("input", update);
  confirm.addEventListener("input", update);

  // Show/hide both fields together; the button only appears when this script runs.
  var toggle = document.querySelector("[data-toggle]");
  if (toggle) {
    toggle.hidden = false;
    toggle.setAttribute("aria-pressed", "false");
    toggle.addEventListener("click", function () {
      var show = password.type === "password";
      password.type = confirm.type = show ? "text" : "password";
      toggle.textContent = show ? "Hide" : "Show";
      toggle.setAttribute("aria-pressed", show ? "true" : "false");
    });
  }
  update();
})();
