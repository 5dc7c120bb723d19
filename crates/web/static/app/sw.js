// Latchkey Authenticator's service worker: keeps the app's shell for offline starts, and turns
// a Web Push message into a notification. A push carries only a request id; the details come
// from the server over the signed GET /requests, with the device key from IndexedDB (a
// non-extractable CryptoKey, usable here as in the page). It never answers a request: that
// needs the person, the number, and for phone sign-in the phone's user verification.
importScripts("/authenticator/app/static/core.js");

var L = self.Latchkey;
var SCOPE = "/authenticator/app/";
var CACHE = "latchkey-app-v1";
var SHELL = [
  SCOPE,
  SCOPE + "manifest.webmanifest",
  SCOPE + "static/app.js",
  SCOPE + "static/core.js",
  SCOPE + "static/app.css",
  SCOPE + "static/icon-192.png",
  SCOPE + "static/icon-512.png"
];
// Kept when the server has them (the map of the request screen).
var OPTIONAL = ["/static/map.js", "/static/world-map.js"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(SHELL).then(function () {
      return Promise.all(OPTIONAL.map(function (url) { return cache.add(url).catch(function () {}); }));
    });
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

// The network first, so a new version shows at once; the cached shell when offline. The
// device API is never cached or touched here.
self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== location.origin) return;
  var navigation = request.mode === "navigate" && url.pathname.indexOf(SCOPE) === 0;
  var cached = SHELL.indexOf(url.pathname) >= 0 || OPTIONAL.indexOf(url.pathname) >= 0;
  if (!navigation && !cached) return;
  event.respondWith(fetch(request).catch(function () {
    return caches.match(navigation ? SCOPE : url.pathname).then(function (hit) {
      return hit || Response.error();
    });
  }));
});

function readPush(event) {
  if (!event.data) return null;
  try {
    var message = event.data.json();
    return message && message.type === "request" && typeof message.id === "string" ? message : null;
  } catch (e) {
    return null;
  }
}

// The request `id` and the account it was sent to, asking each account of this server.
function findRequest(id) {
  return L.listAccounts().then(function (accounts) {
    var here = accounts.filter(function (a) { return a.server === location.origin; });
    return Promise.all(here.map(function (a) {
      return L.pending(a).then(function (list) {
        var match = list.filter(function (r) { return r.id === id; })[0];
        return match ? { account: a, request: match } : null;
      }, function () { return null; });
    }));
  }).then(function (found) {
    return found.filter(Boolean)[0] || null;
  });
}

self.addEventListener("push", function (event) {
  var message = readPush(event);
  // Every push shows a notification (browsers require it of userVisibleOnly subscriptions).
  var shown = (message ? findRequest(message.id) : Promise.resolve(null)).then(function (found) {
    if (!found) {
      return self.registration.showNotification("Sign-in request", {
        body: "Open the authenticator to see it.",
        tag: message ? message.id : "latchkey",
        data: { id: message ? message.id : null },
        icon: SCOPE + "static/icon-192.png"
      });
    }
    var r = found.request;
    var lines = [r.user_principal_name];
    if (r.application != null) lines.push(r.application);
    if (r.location != null) lines.push(r.location);
    return self.registration.showNotification(r.kind === "registration_test" ? "Let's try it out" : r.kind === "phone_sign_in_consent" ? "Allow phone sign-in?" : "Approve sign-in?", {
      body: lines.join("\n"),
      tag: r.id,
      requireInteraction: true,
      data: { id: r.id },
      icon: SCOPE + "static/icon-192.png",
      badge: SCOPE + "static/icon-192.png"
    });
  });
  event.waitUntil(shown);
});

// Tapping the notification opens the app at the request's number entry.
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var id = event.notification.data && event.notification.data.id;
  var url = SCOPE + (id ? "?request=" + encodeURIComponent(id) : "");
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    var open = windows.filter(function (w) { return new URL(w.url).pathname.indexOf(SCOPE) === 0; })[0];
    if (open) {
      open.postMessage({ type: "open-request", id: id });
      return open.focus();
    }
    return self.clients.openWindow(url);
  }));
});
