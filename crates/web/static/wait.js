// Waiting pages (the sign-in number, a new authenticator's registration): reload (or go on)
// when the server says something changed, so that the page stays still (focus, screen reader
// position) until then. Without scripts the page refreshes itself every few seconds instead
// (its <noscript> refresh), so nothing depends on this.
//
// A page with data-wait-url (the number page) asks with a long-poll: the server answers the
// moment the approval settles, or after its wait with {"pending":true,"waited":true}, and the
// page asks again at once. When the long-poll fails (a network error, an error status, a
// proxy in the way) or the server answers "waited":false (it holds no more waiters), the page
// falls back for good to asking every second, as the other pages do.
(function () {
  var el = document.querySelector("[data-status-url]");
  if (!el) return;
  var url = el.getAttribute("data-status-url");
  var waitUrl = el.getAttribute("data-wait-url");
  var next = el.getAttribute("data-next-url");
  function done() {
    if (next) { window.location.assign(next); }
    else { window.location.reload(); }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { pending: true }; })
      .then(function (s) {
        if (s.pending) { setTimeout(poll, 1000); }
        else { done(); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  function wait() {
    fetch(waitUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (s) {
        if (!s.pending) { done(); }
        else if (s.waited === true) { wait(); }
        else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 1000); });
  }
  if (waitUrl && window.fetch) { wait(); }
  else { setTimeout(poll, 1000); }
})();
