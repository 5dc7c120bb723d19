// The first sign-in page is shown by the authorization endpoint itself, one redirect fewer for
// every sign-in, so the address bar would hold /authorize and the application's request. The
// page names where it lives (<meta name="latchkey-page">); this puts that address in the
// history instead, so that reloading it, or going Back to it from the next page, shows this
// same sign-in (at /login) rather than starting another at /authorize. Without scripts the
// address stays as it was and a reload starts a fresh sign-in, which is all it loses.
(function () {
  var meta = document.querySelector('meta[name="latchkey-page"]');
  if (!meta || !window.history || !history.replaceState) return;
  var page = meta.getAttribute("content");
  if (page && location.pathname !== page) history.replaceState(null, "", page);
})();
