// Waiting pages (the sign-in number, a new authenticator's registration): ask the server
// every second whether anything changed and reload when it did. Without this script the
// page still refreshes itself every few seconds, so nothing depends on it.
(function () {
  var el = document.querySelector("[data-status-url]");
  if (!el) return;
  var url = el.getAttribute("data-status-url");
  var next = el.getAttribute("data-next-url");
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { pending: true }; })
      .then(function (s) {
        if (s.pending) { setTimeout(poll, 1000); }
        else if (next) { window.location.assign(next); }
        else { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
