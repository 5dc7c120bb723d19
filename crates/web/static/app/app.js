// Latchkey Authenticator, the page: accounts, activation, the registration test, requests
// with number matching, phone sign-in with the phone's own user verification (WebAuthn), and
// notifications. Text from a server is only ever set as text, never as markup. The CSP
// allows no inline script, so everything is here; core.js holds the keys and the protocol.
(function () {
  "use strict";

  var L = self.Latchkey;
  var SCOPE = "/authenticator/app/";
  // While the app is open and visible it holds the live channel (a WebSocket signed in its
  // query) for each account. GET /requests is the fallback: every 2 s while an account's
  // channel is down, every 10 s while all are up (events can be missed; see the protocol).
  var POLL_MS = 2000;
  var LIVE_POLL_MS = 10000;
  // Reconnect after 1 s, doubling to at most a minute; each attempt is signed afresh.
  var RETRY_FIRST_MS = 1000;
  var RETRY_MAX_MS = 60000;
  // How long a pull that found the request on screen gone waits for the event that says why.
  var EVENT_GRACE_MS = 1500;

  var main = document.getElementById("app");
  var statusLine = document.getElementById("status");
  var state = {
    accounts: [],
    // id -> {account, request}: what the last poll found waiting.
    waiting: {},
    // The request on screen: {accountId, request, busy}.
    current: null,
    // Requests answered here, so a poll that raced the answer does not bring them back.
    answered: {},
    pollTimer: null,
    polling: false,
    lastPoll: 0,
    // accountId -> {socket, live, delay, timer}: the live channel of each account.
    channels: {},
    // A request a notification asked to open.
    wanted: new URLSearchParams(location.search).get("request")
  };

  // ---- small DOM helpers ----

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value == null || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "onclick") node.addEventListener("click", value);
      else if (name === "onsubmit") node.addEventListener("submit", value);
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function show(children, screen) {
    main.textContent = "";
    main.setAttribute("data-screen", screen);
    children.forEach(function (c) { if (c) main.appendChild(c); });
    var heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }

  function say(text, kind) {
    statusLine.textContent = text || "";
    statusLine.hidden = !text;
    statusLine.className = "status" + (kind ? " " + kind : "");
  }

  function host(server) {
    try { return new URL(server).host; } catch (e) { return server; }
  }

  function problem(e) {
    if (e && e.name === "NotAllowedError") {
      return "Your phone didn't confirm it's you (fingerprint, face or screen lock), or it was cancelled. Try again.";
    }
    if (e && e.name === "InvalidStateError") {
      return "This phone already has a sign-in key for this account.";
    }
    if (e instanceof L.ApiError) return e.message;
    return (e && e.message) || "Something went wrong. Try again.";
  }

  // ---- accounts ----

  function load() {
    return L.listAccounts().then(function (accounts) {
      state.accounts = accounts;
      return accounts;
    });
  }

  function account(id) {
    return state.accounts.filter(function (a) { return a.id === id; })[0] || null;
  }

  // Asks each server what it knows of the device; drops accounts it no longer knows.
  function refreshStatus() {
    return Promise.all(state.accounts.map(function (a) {
      return L.deviceStatus(a).then(function (status) {
        a.confirmed = !!status.confirmed;
        a.phone_sign_in = !!status.phone_sign_in;
        a.phone_sign_in_proof = status.phone_sign_in_proof || null;
        a.webauthn = status.webauthn || null;
        return L.putAccount(a);
      }, function (e) {
        if (e instanceof L.ApiError && e.code === "unknown_device") {
          say("The account " + a.user_principal_name + " was removed on its server, so it was removed here too.");
          return L.deleteAccount(a.id);
        }
      });
    })).then(load);
  }

  function statusOf(a) {
    if (!a.confirmed) return "Waiting for the test notification";
    if (a.phone_sign_in && a.phone_sign_in_proof === "webauthn") return "Passwordless sign-in and MFA push";
    if (a.phone_sign_in) return "Phone sign-in is on with another app's key";
    return "MFA push";
  }

  // ---- screens ----

  function home() {
    state.current = null;
    history.replaceState(null, "", SCOPE);
    var items = state.accounts.map(function (a) {
      var actions = [];
      if (a.confirmed && !a.phone_sign_in) {
        actions.push(el("button", { type: "button", class: "secondary", "data-action": "enable", onclick: function () { enablePhoneSignIn(a.id); } }, ["Enable phone sign-in"]));
      }
      if (a.phone_sign_in && a.phone_sign_in_proof === "webauthn") {
        actions.push(el("button", { type: "button", class: "secondary", "data-action": "disable", onclick: function () { disablePhoneSignIn(a.id); } }, ["Turn off phone sign-in"]));
      }
      actions.push(el("button", { type: "button", class: "secondary danger-text", "data-action": "remove", onclick: function () { confirmRemove(a.id); } }, ["Remove"]));
      return el("li", { class: "account", "data-account": a.id }, [
        el("p", { class: "account-name", text: a.display_name || a.user_principal_name }),
        el("p", { class: "account-upn", text: a.user_principal_name }),
        el("p", { class: "account-meta", text: host(a.server) + " · " + a.device_name }),
        el("p", { class: "account-status", text: statusOf(a) }),
        el("div", { class: "actions" }, actions)
      ]);
    });
    var children = [el("h1", { text: "Accounts" })];
    if (items.length) {
      children.push(el("ul", { class: "accounts" }, items));
      children.push(el("p", { class: "muted waiting", id: "listening", text: "Sign-in requests appear here while the app is open." }));
      children.push(el("p", { class: "muted", id: "live-status", "data-live": allLive() ? "yes" : "no", text: liveText() }));
    } else {
      children.push(el("p", { class: "empty", id: "no-accounts" }, [
        "No accounts yet. On a computer, open Security info, choose Add sign-in method › Authenticator app, and scan the QR code with this phone's camera."
      ]));
    }
    children.push(notificationsCard());
    show(children, "home");
  }

  function notificationsCard() {
    if (!("serviceWorker" in navigator) || !("PushManager" in self) || !("Notification" in self)) return null;
    var onThisServer = state.accounts.filter(function (a) { return a.server === location.origin && a.confirmed; });
    if (!onThisServer.length) return null;
    if (Notification.permission === "granted" && localStorage.getItem("latchkey-push") === "on") {
      return el("p", { class: "muted", id: "notifications-on", text: "Notifications are on." });
    }
    return el("div", { class: "card-note" }, [
      el("p", { text: "Get sign-in requests even when the app is closed." }),
      el("button", { type: "button", id: "notifications", onclick: turnOnNotifications }, ["Turn on notifications"])
    ]);
  }

  function activation(link) {
    var name = el("input", { type: "text", id: "device-name", name: "device_name", maxlength: "64", autocomplete: "off", required: true, value: defaultDeviceName() });
    var error = el("p", { class: "error", id: "activate-error", role: "alert", hidden: true });
    var form = el("form", { id: "activate", onsubmit: function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      error.hidden = true;
      L.activate(link.server, link.code, name.value.trim()).then(function (added) {
        return load().then(function () {
          // The code is spent; keep it out of the address bar and history.
          history.replaceState(null, "", SCOPE);
          openRequest(added.account.id, added.test);
        });
      }, function (e) {
        button.disabled = false;
        error.textContent = e.code === "invalid_activation_code"
          ? "This QR code has expired or was already used. On Security info, add the authenticator app again for a new one."
          : problem(e);
        error.hidden = false;
      });
    } }, [
      el("label", { for: "device-name", text: "Name this phone" }),
      el("p", { class: "hint", text: "Security info and the sign-in log show this name." }),
      name,
      error,
      el("button", { type: "submit" }, ["Add account"])
    ]);
    show([
      el("h1", { text: "Add an account" }),
      el("p", {}, ["From ", el("strong", { text: host(link.server) }), "."]),
      form
    ], "activate");
  }

  function defaultDeviceName() {
    var ua = navigator.userAgent;
    if (/iPhone/.test(ua)) return "iPhone";
    if (/iPad/.test(ua)) return "iPad";
    if (/Android/.test(ua)) return "Android phone";
    return "This browser";
  }

  var TITLES = {
    registration_test: "Let's try it out",
    phone_sign_in_consent: "Allow phone sign-in?",
    phone_sign_in: "Approve sign-in?",
    mfa_push: "Approve sign-in?"
  };

  function openRequest(accountId, request) {
    var a = account(accountId);
    if (!a || state.answered[request.id]) return;
    state.current = { accountId: accountId, request: request, busy: false };
    var r = request;
    var details = [el("dt", { text: "Account" }), el("dd", { id: "request-account", text: r.user_principal_name })];
    if (r.application != null) {
      details.push(el("dt", { text: "Application" }), el("dd", { id: "request-application", text: r.application }));
    }
    if (r.location != null) {
      var place = el("dd", { id: "request-location" }, [r.location]);
      if (r.location_attribution) place.appendChild(el("span", { class: "attribution", text: r.location_attribution }));
      details.push(el("dt", { text: "Location" }), place);
    }
    var map = null;
    if (typeof r.latitude === "number" && typeof r.longitude === "number") {
      map = el("div", { class: "map", id: "request-map", "aria-hidden": "true" });
      drawMap(map, r.latitude, r.longitude);
    }
    var number = el("input", { type: "text", id: "number", name: "number", inputmode: "numeric", pattern: "[0-9]*", maxlength: "2", autocomplete: "off", required: true, "aria-describedby": "number-hint" });
    var error = el("p", { class: "error", id: "answer-error", role: "alert", hidden: true });
    var buttons = [
      el("button", { type: "submit", id: "approve" }, ["Approve"]),
      el("button", { type: "button", class: "secondary", id: "deny", onclick: function () { decide("deny", null, error); } }, ["Deny"])
    ];
    if (r.report_allowed) {
      buttons.push(el("button", { type: "button", class: "link danger-text", id: "report", onclick: function () { decide("report", null, error); } }, ["No, it's not me"]));
    }
    var form = el("form", { id: "answer", novalidate: true, onsubmit: function (event) {
      event.preventDefault();
      var typed = number.value.trim();
      if (!/^[0-9]{2}$/.test(typed)) {
        number.setAttribute("aria-invalid", "true");
        error.textContent = "Type the two-digit number the sign-in page shows.";
        error.hidden = false;
        number.focus();
        return;
      }
      number.removeAttribute("aria-invalid");
      decide("approve", Number(typed), error);
    } }, [
      el("label", { for: "number", text: "Enter the number shown on the " + (r.kind === "registration_test" || r.kind === "phone_sign_in_consent" ? "Security info page" : "sign-in page") }),
      el("p", { class: "hint", id: "number-hint", text: "Two digits." }),
      number,
      error,
      el("div", { class: "actions" }, buttons)
    ]);
    show([
      el("h1", { text: TITLES[r.kind] || "Approve?" }),
      el("dl", { class: "request", "data-request": r.id, "data-kind": r.kind }, details),
      map,
      form
    ], "request");
    number.focus();
    say("");
  }

  function drawMap(node, latitude, longitude) {
    // D's map.js draws the offline world map; the page loads it only when it is needed.
    withMapScripts().then(function () {
      if (self.LatchkeyMap && typeof self.LatchkeyMap.render === "function") {
        self.LatchkeyMap.render(node, latitude, longitude);
      } else {
        node.remove();
      }
    });
  }

  var mapScripts = null;
  function withMapScripts() {
    if (self.LatchkeyMap) return Promise.resolve();
    if (!mapScripts) {
      mapScripts = ["/static/world-map.js", "/static/map.js"].reduce(function (before, src) {
        return before.then(function () {
          return new Promise(function (resolve) {
            var script = el("script", { src: src });
            script.onload = resolve;
            script.onerror = resolve;
            document.head.appendChild(script);
          });
        });
      }, Promise.resolve());
    }
    return mapScripts;
  }

  var OUTCOMES = {
    approved: ["Approved", "You can go back to the sign-in page."],
    denied: ["Denied", "The sign-in was stopped."],
    reported: ["Reported", "The sign-in was stopped and reported. Your administrator will look at it."],
    wrong_number: ["The number didn't match", "The sign-in was stopped. Start it again and type the number the page shows."]
  };

  function decide(decision, number, error) {
    var current = state.current;
    if (!current || current.busy) return;
    var a = account(current.accountId);
    var r = current.request;
    current.busy = true;
    main.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    error.hidden = true;
    var webauthn = r.kind === "phone_sign_in" && decision === "approve" && a.phone_sign_in_proof === "webauthn" && a.webauthn;
    L.answer(a, r, decision, number, webauthn ? assertionFor(a) : null).then(function (outcome) {
      state.answered[r.id] = true;
      delete state.waiting[r.id];
      return afterOutcome(a, r, outcome);
    }, function (e) {
      current.busy = false;
      main.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      if (e instanceof L.ApiError && (e.status === 409 || e.status === 410)) {
        state.answered[r.id] = true;
        return gone(r, e.code);
      }
      error.textContent = problem(e);
      error.hidden = false;
    });
  }

  function afterOutcome(a, r, outcome) {
    var words = OUTCOMES[outcome] || ["Answered", ""];
    var next = Promise.resolve();
    if (r.kind === "registration_test") {
      if (outcome === "approved") {
        a.confirmed = true;
        words = ["You're all set", "This phone now gets sign-in requests for " + a.user_principal_name + "."];
        next = L.putAccount(a).then(function () { subscribeNewAccount(a); });
      } else {
        // The server removed the unconfirmed device; so does the app.
        words = [words[0], "The account was not added. On Security info, add the authenticator app again."];
        next = L.deleteAccount(a.id);
      }
    } else if (r.kind === "phone_sign_in_consent") {
      words = outcome === "approved"
        ? ["Phone sign-in allowed", "Choose Enable phone sign-in for " + a.user_principal_name + " now."]
        : [words[0], "Nothing was allowed."];
    }
    return next.then(load).then(function () {
      show([
        el("h1", { id: "outcome", "data-outcome": outcome, text: words[0] }),
        el("p", { text: words[1] }),
        el("button", { type: "button", id: "done", onclick: function () { say(""); home(); } }, ["Done"])
      ], "outcome");
    });
  }

  var GONE = {
    already_answered: "This request was answered on another device.",
    answered_elsewhere: "This request was answered on another device.",
    request_expired: "This request expired.",
    request_cancelled: "This request was cancelled.",
    gone: "This request is no longer waiting: it was answered on another device, cancelled, or it expired."
  };

  // The request on screen is no longer waiting: back to the accounts, saying why.
  function gone(r, why) {
    if (state.current && state.current.request.id === r.id) {
      home();
      say(GONE[why] || GONE.gone, "notice");
    }
  }

  // ---- WebAuthn: phone sign-in with the phone's own user verification ----

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    var options = Object.assign({}, json);
    options.challenge = L.fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: L.fromBase64url(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: L.fromBase64url(c.id) });
    });
    return options;
  }

  function credentialJson(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response;
    var response = { clientDataJSON: L.toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = L.toBase64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = L.toBase64url(r.authenticatorData);
      response.signature = L.toBase64url(r.signature);
      if (r.userHandle) response.userHandle = L.toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: L.toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  // An assertion by the account's WebAuthn credential over `challenge`, with user
  // verification: the fingerprint, face or screen lock of this phone.
  function assertionFor(a) {
    return function (challenge) {
      return navigator.credentials.get({ publicKey: {
        challenge: challenge,
        rpId: a.webauthn.rp_id,
        allowCredentials: [{ type: "public-key", id: L.fromBase64url(a.webauthn.credential_id) }],
        userVerification: "required",
        timeout: 60000
      } }).then(credentialJson);
    };
  }

  function enablePhoneSignIn(id) {
    var a = account(id);
    if (!a) return;
    if (!self.PublicKeyCredential) {
      say("This browser can't make sign-in keys (WebAuthn), so phone sign-in can't be turned on here.", "error");
      return;
    }
    say("Confirm it's you on your phone…");
    L.signed(a, "POST", "/phone-sign-in/passkey/options", "{}").then(function (started) {
      var ceremony = started.body.ceremony;
      return navigator.credentials.create({ publicKey: creationOptions(started.body.public_key) }).then(function (credential) {
        var body = JSON.stringify({ ceremony: ceremony, credential: credentialJson(credential) });
        return L.signed(a, "POST", "/phone-sign-in/passkey", body);
      });
    }).then(function (answer) {
      var device = answer.body.device || {};
      a.phone_sign_in = !!device.phone_sign_in;
      a.phone_sign_in_proof = device.phone_sign_in_proof || "webauthn";
      a.webauthn = device.webauthn || null;
      return L.putAccount(a);
    }).then(load).then(function () {
      home();
      say("Phone sign-in is on. You can now sign in to " + a.user_principal_name + " without a password.", "notice");
    }, function (e) {
      say(problem(e), "error");
    });
  }

  function disablePhoneSignIn(id) {
    var a = account(id);
    if (!a || !a.webauthn) return;
    L.signed(a, "DELETE", "/phone-sign-in", null, function (requestNonce) {
      var input = ["latchkey-passwordless-off-v1", a.device_id, requestNonce].join("\n");
      return L.sha256Text(input).then(assertionFor(a)).then(function (assertion) {
        return JSON.stringify({ assertion: assertion });
      });
    }).then(function () {
      a.phone_sign_in = false;
      a.phone_sign_in_proof = null;
      a.webauthn = null;
      return L.putAccount(a);
    }).then(load).then(function () {
      home();
      say("Phone sign-in is off for " + a.user_principal_name + ".", "notice");
    }, function (e) {
      say(problem(e), "error");
    });
  }

  // ---- removing an account ----

  function confirmRemove(id) {
    var a = account(id);
    if (!a) return;
    state.current = null;
    show([
      el("h1", { text: "Remove this account?" }),
      el("p", { text: a.user_principal_name + " on " + host(a.server) + " will no longer get sign-in requests on this phone. The server forgets this phone too." }),
      el("div", { class: "actions" }, [
        el("button", { type: "button", class: "danger", id: "remove-confirm", onclick: function () {
          L.removeDevice(a).then(function () { return L.deleteAccount(a.id); }).then(load).then(function () {
            home();
            say("Removed " + a.user_principal_name + ".", "notice");
          }, function (e) { say(problem(e), "error"); });
        } }, ["Remove"]),
        el("button", { type: "button", class: "secondary", onclick: home }, ["Keep it"])
      ])
    ], "remove");
  }

  // ---- notifications (Web Push) ----

  function turnOnNotifications() {
    var button = document.getElementById("notifications");
    if (button) button.disabled = true;
    var accounts = state.accounts.filter(function (a) { return a.server === location.origin && a.confirmed; });
    // The permission request must come straight from the tap (iOS insists).
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw new Error("Notifications are blocked for this app. Allow them in the browser's site settings.");
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return L.signed(accounts[0], "GET", "/push", "").then(function (push) {
        var key = L.fromBase64url(push.body.vapid_public_key);
        return registration.pushManager.getSubscription().then(function (existing) {
          return existing || registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
        });
      });
    }).then(function (subscription) {
      return registerSubscription(subscription, accounts);
    }).then(function () {
      localStorage.setItem("latchkey-push", "on");
      home();
      say("Notifications are on.", "notice");
    }, function (e) {
      if (button) button.disabled = false;
      say(problem(e), "error");
    });
  }

  // One subscription for the app (one service worker), registered for each account.
  function registerSubscription(subscription, accounts) {
    var body = JSON.stringify(subscription.toJSON());
    return Promise.all(accounts.map(function (a) { return L.signed(a, "PUT", "/push-subscription", body); }));
  }

  // An account confirmed after notifications were turned on gets them too (best effort: the
  // button stays for another try if this fails).
  function subscribeNewAccount(a) {
    if (localStorage.getItem("latchkey-push") !== "on" || a.server !== location.origin) return;
    if (!("serviceWorker" in navigator) || !("PushManager" in self)) return;
    navigator.serviceWorker.ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (subscription) return registerSubscription(subscription, [a]);
    }).catch(function () { localStorage.removeItem("latchkey-push"); });
  }

  // ---- waiting for requests ----

  function poll() {
    if (state.polling || document.hidden) return Promise.resolve();
    state.polling = true;
    state.lastPoll = Date.now();
    var found = {};
    return Promise.all(state.accounts.map(function (a) {
      return L.pending(a).then(function (list) {
        list.forEach(function (r) { found[r.id] = { accountId: a.id, request: r }; });
      }, function (e) {
        if (e instanceof L.ApiError && e.code === "unknown_device") {
          // Removed on the server (or its registration test failed): forget it.
          return L.deleteAccount(a.id).then(load).then(function () {
            if (state.current && state.current.accountId === a.id) home();
            say("The account " + a.user_principal_name + " was removed on its server, so it was removed here too.");
          });
        }
        // Offline for a moment: keep what is on screen; its own deadline still applies.
        Object.keys(state.waiting).forEach(function (id) {
          if (state.waiting[id].accountId === a.id) found[id] = state.waiting[id];
        });
      });
    })).then(function () {
      state.waiting = found;
      var current = state.current;
      if (current && !current.busy && !found[current.request.id]) {
        var expired = current.request.expires_at * 1000 <= Date.now();
        var channel = state.channels[current.accountId];
        if (!expired && channel && channel.live) {
          // The channel's event says why it left (the server sends it as it notices, often
          // while answering this very pull); say only "no longer waiting" if none comes.
          var r = current.request;
          setTimeout(function () {
            if (state.current && state.current.request.id === r.id && !state.current.busy) gone(r, "gone");
          }, EVENT_GRACE_MS);
        } else {
          gone(current.request, expired ? "request_expired" : "gone");
        }
      }
      if (main.getAttribute("data-screen") === "home") {
        var next = pick(found);
        if (next) openRequest(next.accountId, next.request);
      }
    }).then(function () { state.polling = false; }, function () { state.polling = false; });
  }

  // The request a notification asked for, else the oldest waiting.
  function pick(found) {
    if (state.wanted && found[state.wanted]) {
      var wanted = found[state.wanted];
      state.wanted = null;
      return wanted;
    }
    var ids = Object.keys(found).filter(function (id) { return !state.answered[id]; });
    ids.sort(function (x, y) { return found[x].request.created_at - found[y].request.created_at; });
    return ids.length ? found[ids[0]] : null;
  }

  function startPolling() {
    if (state.pollTimer) return;
    state.pollTimer = setInterval(tick, POLL_MS);
    connectAll();
    poll();
  }

  function tick() {
    connectAll();
    if (allLive() && Date.now() - state.lastPoll < LIVE_POLL_MS) return;
    poll();
  }

  // ---- the live channel ----

  function listened() {
    return state.accounts.filter(function (a) { return a.confirmed; });
  }

  function allLive() {
    var accounts = listened();
    return accounts.length > 0 && accounts.every(function (a) {
      return state.channels[a.id] && state.channels[a.id].live;
    });
  }

  function liveText() {
    if (!("WebSocket" in self)) return "Checking for requests every few seconds.";
    return allLive() ? "Live: requests arrive as soon as they are sent." : "Connecting…";
  }

  function liveChanged() {
    var line = document.getElementById("live-status");
    if (line) {
      line.textContent = liveText();
      line.setAttribute("data-live", allLive() ? "yes" : "no");
    }
  }

  // Opens the channel of every listened-to account that has none (and is not waiting to retry),
  // and closes the channels of accounts that are gone.
  function connectAll() {
    if (!("WebSocket" in self) || document.hidden) return;
    var ids = {};
    listened().forEach(function (a) { ids[a.id] = true; connect(a); });
    Object.keys(state.channels).forEach(function (id) {
      if (!ids[id]) disconnect(id);
    });
  }

  function connect(a) {
    var channel = state.channels[a.id] ||
      (state.channels[a.id] = { socket: null, live: false, delay: RETRY_FIRST_MS, timer: null, opening: false });
    if (channel.socket || channel.timer || channel.opening) return;
    channel.opening = true;
    L.streamUrl(a).then(function (url) {
      channel.opening = false;
      if (document.hidden || state.channels[a.id] !== channel) return;
      var socket = new WebSocket(url);
      channel.socket = socket;
      socket.onopen = function () {
        channel.live = true;
        channel.delay = RETRY_FIRST_MS;
        liveChanged();
        // Open first, then pull: what was sent while the channel was down is in the list.
        state.lastPoll = 0;
        poll();
      };
      socket.onmessage = function (message) {
        var event = L.liveEvent(message.data);
        if (event) heard(a.id, event);
      };
      socket.onclose = function () {
        if (channel.socket !== socket) return;
        channel.socket = null;
        channel.live = false;
        liveChanged();
        retry(a.id, channel);
      };
    }, function () {
      channel.opening = false;
      retry(a.id, channel);
    });
  }

  function retry(id, channel) {
    if (document.hidden || state.channels[id] !== channel || channel.timer) return;
    channel.timer = setTimeout(function () {
      channel.timer = null;
      var a = account(id);
      if (a && state.channels[id] === channel) connect(a);
    }, channel.delay);
    channel.delay = Math.min(channel.delay * 2, RETRY_MAX_MS);
  }

  function disconnect(id) {
    var channel = state.channels[id];
    if (!channel) return;
    delete state.channels[id];
    if (channel.timer) clearTimeout(channel.timer);
    if (channel.socket) channel.socket.close();
    liveChanged();
  }

  var LEFT = { answered_elsewhere: "answered_elsewhere", cancelled: "request_cancelled", expired: "request_expired" };

  // An event on an account's live channel.
  function heard(accountId, event) {
    if (event.type === "request") {
      var r = event.request;
      if (state.answered[r.id]) return;
      state.waiting[r.id] = { accountId: accountId, request: r };
      if (main.getAttribute("data-screen") === "home") {
        var next = pick(state.waiting);
        if (next) openRequest(next.accountId, next.request);
      }
      return;
    }
    // It left: remember so that a pull that raced the event does not bring it back.
    state.answered[event.id] = true;
    delete state.waiting[event.id];
    var current = state.current;
    if (current && !current.busy && current.request.id === event.id) gone(current.request, LEFT[event.type]);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      // Hidden: Web Push takes over; the channels reopen (signed afresh) when it shows again.
      Object.keys(state.channels).forEach(disconnect);
    } else {
      connectAll();
      poll();
    }
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(SCOPE + "sw.js", { scope: SCOPE }).catch(function () {});
    // A tapped notification while the app is open.
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "open-request") {
        state.wanted = event.data.id;
        if (!state.current || !state.current.busy) {
          var found = state.waiting[event.data.id];
          if (found) openRequest(found.accountId, found.request);
          else poll();
        }
      }
    });
  }

  // ---- start ----

  load().then(function () {
    var link = location.pathname === SCOPE + "activate" ? L.parseActivationLink(location.href) : null;
    if (location.pathname === SCOPE + "activate" && !link) {
      home();
      say("This activation link is incomplete. Scan the QR code on Security info again.", "error");
    } else if (link) {
      activation(link);
    } else {
      home();
    }
    return refreshStatus().then(function () {
      if (main.getAttribute("data-screen") === "home") home();
    });
  }).then(startPolling, function (e) {
    show([el("h1", { text: "The app can't start" }), el("p", { class: "error", text: problem(e) })], "error");
  });
})();
