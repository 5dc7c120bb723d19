// The first sign-in page is shown by the authorization endpoint itself, and the number page in
// the answer to the user name's post, one redirect fewer each for every sign-in, so the address
// bar would hold /authorize and the application's request, or /login/username. The page names
// where it lives (<meta name="latchkey-page">); this puts that address in the history instead,
// so that reloading it, or going Back to it from the next page, shows this same sign-in (at
// /login) rather than starting another at /authorize or posting the name again. Without
// scripts the address stays as it was: a reload at /authorize starts a fresh sign-in, and the
// number page's own refresh goes to /login.
(function () {
  var meta = document.querySelector('meta[name="latchkey-page"]');
  if (!meta || !window.history || !history.replaceState) return;
  var page = meta.getAttribute("content");
  if (page && location.pathname !== page) history.replaceState(null, "", page);
})();
