// Passkey ceremonies: registering a security key or passkey on Security info, and signing in
// with one. The server keeps each ceremony's state; this script only carries the options to
// the browser and the browser's answer back. It begins with a POST (answered with JSON), asks
// the browser, then submits the answer as an ordinary form, so the server answers with the
// next page exactly as the other sign-in forms do. Elements it drives carry data-passkey-*
// attributes; the CSP allows no inline script, so everything is here.
(function () {
  "use strict";

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromBase64url(c.id) });
    });
  }

  // Browsers before the JSON helpers (Safari < 18, older Chromium) get the same conversion by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = withIds(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = withIds(json.allowCredentials);
    return options;
  }

  function credentialJson(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  // What the browser's refusals mean to a person.
  function browserMessage(error) {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The request was cancelled, timed out, or your security key or passkey couldn't verify you (its PIN, fingerprint or screen lock). Try again.";
      case "InvalidStateError":
        return "That security key or passkey is already registered to your account.";
      case "SecurityError":
        return "This address can't be used with passkeys. Open Latchkey at its usual address and try again.";
      case "NotSupportedError":
        return "This browser or device can't make the kind of passkey Latchkey needs.";
      case "AbortError":
        return "The request was cancelled. Try again.";
      default:
        return "Your browser couldn't use a passkey here. Try again, or use another way.";
    }
  }

  function ServerError(message) {
    this.name = "ServerError";
    this.message = message;
  }

  function post(url, fields) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields)
    }).then(function (r) {
      var json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (!json) {
        throw new ServerError("Your page expired or your session ended. Reload the page and try again.");
      }
      return r.json().then(function (body) {
        if (!r.ok) throw new ServerError(body.error || "That didn't work. Try again.");
        return body;
      });
    });
  }

  // Submits the browser's answer as a form: the server's answer is the next page.
  function submit(url, fields) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    form.hidden = true;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function show(box, message) {
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.focus();
  }

  function supported() {
    return typeof window.PublicKeyCredential === "function" && navigator.credentials;
  }

  // Registration on Security info.
  var register = document.querySelector("[data-passkey-register]");
  if (register) {
    var problem = document.getElementById("passkey-error");
    var button = register.querySelector("button");
    var csrf = register.getAttribute("data-csrf");
    register.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!supported()) {
        show(problem, "This browser can't use security keys or passkeys.");
        return;
      }
      if (problem) problem.hidden = true;
      button.disabled = true;
      var name = (document.getElementById("passkey-name") || { value: "" }).value;
      post(register.getAttribute("data-begin"), { csrf: csrf })
        .then(function (begun) {
          return navigator.credentials
            .create({ publicKey: creationOptions(begun.publicKey) })
            .then(function (credential) {
              submit(register.getAttribute("data-finish"), {
                csrf: csrf,
                ceremony: begun.ceremony,
                name: name,
                response: JSON.stringify(credentialJson(credential))
              });
            });
        })
        .catch(function (error) {
          button.disabled = false;
          show(problem, error instanceof ServerError ? error.message : browserMessage(error));
        });
    });
  }

  // Sign-in: the buttons, the page that starts by itself, and the user-name field's autofill.
  var signIn = document.querySelector("[data-passkey-sign-in]");
  if (!signIn) return;
  var begin = signIn.getAttribute("data-begin");
  var finish = signIn.getAttribute("data-finish");
  var token = signIn.getAttribute("data-csrf");
  var box = document.getElementById("passkey-error");
  var pending = null;

  function ceremony(mode, signal) {
    return post(begin, { csrf: token, mode: mode }).then(function (begun) {
      var request = { publicKey: requestOptions(begun.publicKey) };
      if (begun.mediation) request.mediation = begun.mediation;
      if (signal) request.signal = signal;
      return navigator.credentials.get(request).then(function (credential) {
        submit(finish, {
          csrf: token,
          ceremony: begun.ceremony,
          response: JSON.stringify(credentialJson(credential))
        });
      });
    });
  }

  function start(mode) {
    if (!supported()) {
      show(box, "This browser can't use security keys or passkeys. Use another way to sign in.");
      return;
    }
    // Only one request at a time: the button replaces the autofill's quiet one.
    if (pending) pending.abort();
    pending = null;
    if (box) box.hidden = true;
    ceremony(mode).catch(function (error) {
      show(box, error instanceof ServerError ? error.message : browserMessage(error));
    });
  }

  var buttons = document.querySelectorAll("[data-passkey-start]");
  Array.prototype.forEach.call(buttons, function (b) {
    b.hidden = false;
    b.addEventListener("click", function (event) {
      event.preventDefault();
      start(b.getAttribute("data-passkey-start"));
    });
  });

  if (signIn.hasAttribute("data-passkey-auto")) {
    start(signIn.getAttribute("data-passkey-auto"));
  } else if (signIn.hasAttribute("data-passkey-autofill") && supported() &&
      typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || pending) return;
      pending = new AbortController();
      ceremony("conditional", pending.signal).catch(function (error) {
        // Cancelled for the button, or dismissed: the page carries on as it is.
        if (error && error.name !== "AbortError" && !(error instanceof ServerError)) {
          show(box, browserMessage(error));
        }
      });
    });
  }
})();
