// Waiting pages (the sign-in number, a new authenticator's registration): ask the server
// every second whether anything changed and reload when it did, so that the page stays still
// (focus, screen reader position) until then. Without scripts the page refreshes itself every
// few seconds instead (its <noscript> refresh), so nothing depends on this.
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
