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
//
// A long-poll that asks to finish (its URL has finish=1) brings the next step itself once the
// request settles: {"pending":false,"next":URL} after an approval (the signed-in cookies came
// with it), where the page goes at once instead of reloading first; or a whole page (a denial,
// an expiry, an application's refusal), which the page shows in its own place.
(function () {
  var el = document.querySelector("[data-status-url]");
  if (!el) return;
  var url = el.getAttribute("data-status-url");
  var waitUrl = el.getAttribute("data-wait-url");
  var next = el.getAttribute("data-next-url");
  // Once the person has chosen something on the page (another way, starting again), its
  // form's navigation is theirs: an answer arriving meanwhile must not replace it.
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });
  function done() {
    if (leaving) { return; }
    if (next) { window.location.assign(next); }
    // A fresh GET of the page's address (which here.js may have set), never a re-post of the
    // form whose answer showed it.
    else { window.location.replace(window.location.href); }
  }
  // Only a path here or an http(s) address: never a script: URL, whatever the answer says.
  function goOn(to) {
    if (leaving) { return; }
    var target;
    try { target = new URL(to, window.location.href); } catch (e) { target = null; }
    if (target && (target.protocol === "https:" || target.protocol === "http:")) {
      window.location.assign(target.href);
    } else { done(); }
  }
  function show(html) {
    if (leaving) { return; }
    document.open();
    document.write(html);
    document.close();
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
        var type = r.headers.get("content-type") || "";
        if (type.indexOf("text/html") === 0) {
          return r.text().then(function (html) { show(html); return null; });
        }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (s) {
        if (s === null) { return; }
        if (!s.pending && typeof s.next === "string") { goOn(s.next); }
        else if (!s.pending) { done(); }
        else if (s.waited === true) { wait(); }
        else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 1000); });
  }
  if (waitUrl && window.fetch) { wait(); }
  else { setTimeout(poll, 1000); }
})();
