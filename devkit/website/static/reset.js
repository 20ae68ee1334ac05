// The reset form's little helpers: live policy hints, a match check, show/hide.
// Served as a file (not inline) so the Content-Security-Policy can stay 'self' only.
// The hints are the tenant's requirements as resetrelay's verify lists them; each
// check counts as Auth0's password-sheriff does (ASCII letters and digits, OWASP's
// special characters, JavaScript string length, UTF-8 bytes for the 72-byte limit).
// The server checks everything again; this only helps people type.
(function () {
  "use strict";
  var password = document.getElementById("password");
  var confirm = document.getElementById("password_confirm");
  var match = document.getElementById("match");
  if (!password || !confirm) return;

  var kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[ !"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/];
  var byKind = { lowercase: 0, uppercase: 1, number: 2, special: 3 };

  function longestRun(v) {
    var longest = 0, run = 0;
    for (var i = 0; i < v.length; i++) {
      run = i > 0 && v[i] === v[i - 1] ? run + 1 : 1;
      longest = Math.max(longest, run);
    }
    return longest;
  }

  function longestSequence(v) {
    var longest = 0, length = 0, direction = 0;
    for (var i = 0; i < v.length; i++) {
      if (!/[A-Za-z0-9]/.test(v[i])) { length = 0; direction = 0; continue; }
      var step = length > 0 ? v.charCodeAt(i) - v.charCodeAt(i - 1) : 0;
      if (length > 0 && (step === 1 || step === -1)) {
        if (step === direction) { length += 1; } else { length = 2; direction = step; }
      } else { length = 1; direction = 0; }
      longest = Math.max(longest, length);
    }
    return longest;
  }

  var checks = {
    min_length: function (v, item) { return v.length >= Number(item.dataset.min); },
    character_types: function (v, item) {
      var count = kinds.filter(function (kind) { return kind.test(v); }).length;
      return count >= Number(item.dataset.min);
    },
    lowercase: function (v) { return kinds[byKind.lowercase].test(v); },
    uppercase: function (v) { return kinds[byKind.uppercase].test(v); },
    number: function (v) { return kinds[byKind.number].test(v); },
    special: function (v) { return kinds[byKind.special].test(v); },
    identical_characters: function (v, item) {
      return v !== "" && longestRun(v) <= Number(item.dataset.max);
    },
    sequential_characters: function (v, item) {
      return v !== "" && longestSequence(v) <= Number(item.dataset.max);
    },
    max_length: function (v, item) {
      return v !== "" && new TextEncoder().encode(v).length <= Number(item.dataset.maxBytes);
    },
  };

  function update() {
    document.querySelectorAll("[data-check]").forEach(function (item) {
      var check = checks[item.dataset.check];
      // Requirements only the account service can judge carry no tick.
      if (check) item.classList.toggle("met", check(password.value, item));
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
