// Latchkey Authenticator, the part shared by the page and the service worker: the accounts in
// IndexedDB, the device keys (WebCrypto, non-extractable), and requests signed exactly as
// docs/authenticator-protocol.md says. No DOM here: the service worker loads this file too.
(function (root) {
  "use strict";

  var API = "/authenticator/v1";
  var DB_NAME = "latchkey-authenticator";
  var DB_VERSION = 1;
  var ACCOUNTS = "accounts";
  var encoder = new TextEncoder();

  // ---- encodings ----

  function toBase64url(bytes) {
    bytes = new Uint8Array(bytes);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  function sha256Text(text) {
    return sha256(encoder.encode(text));
  }

  // 18 random bytes: 24 base64url characters, inside the protocol's 16 to 64.
  function nonce() {
    return toBase64url(crypto.getRandomValues(new Uint8Array(18)));
  }

  // ---- the accounts ----

  function openDb() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open(DB_NAME, DB_VERSION);
      open.onupgradeneeded = function () {
        open.result.createObjectStore(ACCOUNTS, { keyPath: "id" });
      };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(ACCOUNTS, mode);
        var result;
        var request = work(tx.objectStore(ACCOUNTS));
        if (request) request.onsuccess = function () { result = request.result; };
        tx.oncomplete = function () { db.close(); resolve(result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
        tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function listAccounts() {
    return withStore("readonly", function (s) { return s.getAll(); }).then(function (all) {
      return (all || []).sort(function (a, b) { return a.added_at - b.added_at; });
    });
  }

  function getAccount(id) {
    return withStore("readonly", function (s) { return s.get(id); });
  }

  function putAccount(account) {
    return withStore("readwrite", function (s) { return s.put(account); });
  }

  function deleteAccount(id) {
    return withStore("readwrite", function (s) { return s.delete(id); });
  }

  // ---- keys ----

  // A new device key. The private half is non-extractable: it can sign, and be stored in
  // IndexedDB as a CryptoKey, but no script (ours included) can read its bytes.
  function newDeviceKey() {
    return crypto.subtle
      .generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
      .then(function (pair) {
        return crypto.subtle.exportKey("raw", pair.publicKey).then(function (raw) {
          // "raw" is the uncompressed SEC1 point, 65 bytes, as the protocol wants it.
          return { privateKey: pair.privateKey, publicKey: toBase64url(raw) };
        });
      });
  }

  // WebCrypto's ECDSA signature is already the fixed-length r‖s the protocol uses.
  function sign(key, text) {
    return crypto.subtle
      .sign({ name: "ECDSA", hash: "SHA-256" }, key, encoder.encode(text))
      .then(toBase64url);
  }

  // ---- the API ----

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  // What a server answers, as {status, body}; errors become an ApiError. At most 1 MiB is
  // read, as the reference app does.
  function readAnswer(response) {
    return response.text().then(function (text) {
      if (text.length > 1048576) throw new ApiError(response.status, "too_large", "The server's answer is too large.");
      var body = null;
      if (text) {
        try { body = JSON.parse(text); } catch (e) { body = null; }
      }
      if (!response.ok) {
        var code = body && typeof body.error === "string" ? body.error : "http_" + response.status;
        var message = body && typeof body.message === "string" ? body.message : "The server answered " + response.status + ".";
        throw new ApiError(response.status, code, message);
      }
      return { status: response.status, body: body };
    });
  }

  function unreachable() {
    throw new ApiError(0, "offline", "The server can't be reached. Check the connection and try again.");
  }

  // A request signed with the account's device key. `path` is below /authenticator/v1;
  // `bodyText` the exact bytes sent (or "" for none). `beforeSign(nonce)` lets a caller put
  // something bound to this request's nonce into the body first (turning phone sign-in off).
  function signed(account, method, path, bodyText, beforeSign) {
    var fullPath = API + path;
    var requestNonce = nonce();
    var body = beforeSign ? beforeSign(requestNonce) : Promise.resolve(bodyText || "");
    return body.then(function (text) {
      var timestamp = String(Math.floor(Date.now() / 1000));
      return sha256Text(text).then(function (digest) {
        var input = ["latchkey-device-request-v1", method, fullPath, timestamp, requestNonce, toBase64url(digest)].join("\n");
        return sign(account.key, input);
      }).then(function (signature) {
        var headers = {
          "X-Latchkey-Device": account.device_id,
          "X-Latchkey-Timestamp": timestamp,
          "X-Latchkey-Nonce": requestNonce,
          "X-Latchkey-Signature": signature
        };
        if (text) headers["Content-Type"] = "application/json";
        return fetch(account.server + fullPath, {
          method: method,
          headers: headers,
          body: text || undefined,
          cache: "no-store",
          credentials: "omit",
          redirect: "error"
        }).then(readAnswer, unreachable);
      });
    });
  }

  // The live channel's address, signed in its query: a browser cannot set the X-Latchkey-*
  // headers on a WebSocket handshake. The signature covers GET, the path without the query,
  // a fresh timestamp and nonce and the empty body; the address works once, within 60 s.
  function streamUrl(account) {
    var fullPath = API + "/stream";
    var requestNonce = nonce();
    var timestamp = String(Math.floor(Date.now() / 1000));
    return sha256Text("").then(function (digest) {
      var input = ["latchkey-device-request-v1", "GET", fullPath, timestamp, requestNonce, toBase64url(digest)].join("\n");
      return sign(account.key, input);
    }).then(function (signature) {
      var url = new URL(account.server + fullPath);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      // Every value is already URL-safe (hex, digits, base64url); the server takes them as sent.
      url.search = "device=" + account.device_id + "&timestamp=" + timestamp +
        "&nonce=" + requestNonce + "&signature=" + signature;
      return url.href;
    });
  }

  // One event from the live channel, or null when it cannot be read.
  function liveEvent(text) {
    var e;
    try { e = JSON.parse(text); } catch (_) { return null; }
    if (!e || typeof e.type !== "string") return null;
    if (e.type === "request") return readable(e.request) ? e : null;
    if (["answered_elsewhere", "cancelled", "expired"].indexOf(e.type) >= 0 && typeof e.id === "string") return e;
    return null;
  }

  // POST /activate: a new device key, its proof, and the registration test.
  function activate(server, code, deviceName) {
    return newDeviceKey().then(function (key) {
      var proofInput = ["latchkey-activate-v1", code, key.publicKey].join("\n");
      return sign(key.privateKey, proofInput).then(function (proof) {
        var body = { code: code, device_name: deviceName, device_key: key.publicKey, proof: proof };
        function post(fields) {
          return fetch(server + API + "/activate", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(fields),
            cache: "no-store",
            credentials: "omit",
            redirect: "error"
          }).then(readAnswer, unreachable);
        }
        // "app":"web" tells security info this is the web app. A server from before that field
        // refuses unknown fields (invalid_json, before it looks at the code), so ask again
        // without it.
        return post(Object.assign({ app: "web" }, body)).catch(function (e) {
          if (e instanceof ApiError && e.code === "invalid_json") return post(body);
          throw e;
        }).then(function (answer) {
          var r = answer.body;
          var account = {
            id: server + " " + r.device_id,
            server: server,
            device_id: r.device_id,
            device_name: deviceName,
            user_principal_name: r.account.user_principal_name,
            display_name: r.account.display_name,
            issuer: r.account.issuer,
            key: key.privateKey,
            public_key: key.publicKey,
            confirmed: false,
            phone_sign_in: false,
            webauthn: null,
            added_at: Date.now()
          };
          return putAccount(account).then(function () {
            return { account: account, test: r.test_request };
          });
        });
      });
    });
  }

  function pending(account) {
    return signed(account, "GET", "/requests", "").then(function (answer) {
      var list = answer.body && Array.isArray(answer.body.requests) ? answer.body.requests : [];
      // Skip what cannot be read rather than fail on the whole list.
      return list.filter(readable);
    });
  }

  function readable(r) {
    return r && typeof r.id === "string" && typeof r.nonce === "string" &&
      typeof r.kind === "string" && typeof r.user_principal_name === "string" &&
      typeof r.created_at === "number" && typeof r.expires_at === "number" &&
      ["registration_test", "phone_sign_in", "mfa_push", "phone_sign_in_consent"].indexOf(r.kind) >= 0;
  }

  function deviceStatus(account) {
    return signed(account, "GET", "/device", "").then(function (a) { return a.body; });
  }

  function removeDevice(account) {
    return signed(account, "DELETE", "/device", "").catch(function (e) {
      // Already gone on the server: the app may forget it too.
      if (e instanceof ApiError && e.code === "unknown_device") return null;
      throw e;
    });
  }

  function contextDigest(r) {
    var input = ["latchkey-context-v1", r.kind, r.user_principal_name, r.application || "",
      r.location || "", String(r.created_at), String(r.expires_at)].join("\n");
    return sha256Text(input).then(toBase64url);
  }

  function answerInput(r, decision, number, digest) {
    return ["latchkey-answer-v1", r.id, r.nonce, decision, number == null ? "" : String(number), digest].join("\n");
  }

  // Answers a request. `withAssertion(challengeBytes)` is given for phone sign-in approvals on
  // a WebAuthn device: it asks the phone for an assertion over SHA-256 of the answer input.
  function answer(account, r, decision, number, withAssertion) {
    return contextDigest(r).then(function (digest) {
      var input = answerInput(r, decision, number, digest);
      return sign(account.key, input).then(function (signature) {
        var body = { decision: decision, number: number == null ? null : number, context_digest: digest, signature: signature };
        if (!withAssertion) return body;
        return sha256Text(input).then(withAssertion).then(function (assertion) {
          body.assertion = assertion;
          return body;
        });
      });
    }).then(function (body) {
      return signed(account, "POST", "/requests/" + encodeURIComponent(r.id) + "/answer", JSON.stringify(body));
    }).then(function (a) { return a.body && a.body.outcome; });
  }

  // The server URL and code from an activation link of the https form,
  // {server}/authenticator/app/activate#code=…; null when it is not one.
  function parseActivationLink(href) {
    var url;
    try { url = new URL(href); } catch (e) { return null; }
    if (url.protocol !== "https:" && url.protocol !== "http:") return null;
    var suffix = "/authenticator/app/activate";
    if (url.pathname.slice(-suffix.length) !== suffix) return null;
    var params = new URLSearchParams(url.hash.replace(/^#/, ""));
    var code = params.get("code");
    if (params.getAll("code").length !== 1 || !/^[A-Za-z0-9_-]{1,128}$/.test(code)) return null;
    return { server: url.origin + url.pathname.slice(0, -suffix.length), code: code };
  }

  root.Latchkey = {
    API: API,
    ApiError: ApiError,
    toBase64url: toBase64url,
    fromBase64url: fromBase64url,
    sha256Text: sha256Text,
    listAccounts: listAccounts,
    getAccount: getAccount,
    putAccount: putAccount,
    deleteAccount: deleteAccount,
    signed: signed,
    sign: sign,
    activate: activate,
    pending: pending,
    streamUrl: streamUrl,
    liveEvent: liveEvent,
    deviceStatus: deviceStatus,
    removeDevice: removeDevice,
    contextDigest: contextDigest,
    answerInput: answerInput,
    answer: answer,
    parseActivationLink: parseActivationLink
  };
})(self);
