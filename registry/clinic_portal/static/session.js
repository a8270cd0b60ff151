// The clinic portal's session: the clinic's keys as non-extractable WebCrypto keys in this
// browser's IndexedDB (never sent anywhere), access tokens by private_key_jwt, the API, and
// bundle signatures exactly as `registry sign` makes them: a detached ES256 JWS over the
// RFC 8785 (JCS) form of the bundle without its signature.
(function () {
  "use strict";

  var root = document.getElementById("portal");
  var TEXT = JSON.parse(document.getElementById("portal-text").textContent);
  var DB = "clinic-portal", STORE = "session", DRAFT = "clinic-portal-draft";
  var state = { session: null, token: null, expires: 0, clinic: null };

  function t(key) { return TEXT[key] || key; }
  function $(id) { return document.getElementById(id); }
  function say(element, text, problem) {
    element.textContent = text;
    element.classList.toggle("is-problem", Boolean(problem));
  }

  // --- encodings and RFC 8785 -------------------------------------------------------------
  function b64url(bytes) {
    var text = "", view = new Uint8Array(bytes);
    for (var i = 0; i < view.length; i++) { text += String.fromCharCode(view[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function utf8(text) { return new TextEncoder().encode(text); }
  function b64(text) {
    var bytes = utf8(text), out = "";
    for (var i = 0; i < bytes.length; i++) { out += String.fromCharCode(bytes[i]); }
    return btoa(out);
  }

  // JCS: members sorted by UTF-16 code units (the order of JavaScript's sort), numbers and
  // strings as ECMAScript's JSON.stringify writes them, no whitespace.
  function canonical(value) {
    if (value === null || typeof value !== "object") {
      if (typeof value === "number" && !isFinite(value)) { throw new Error("not a JSON number"); }
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    return "{" + Object.keys(value).filter(function (k) { return value[k] !== undefined; })
      .sort().map(function (k) { return JSON.stringify(k) + ":" + canonical(value[k]); })
      .join(",") + "}";
  }

  async function thumbprint(jwk) {
    var text = canonical({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    return b64url(await crypto.subtle.digest("SHA-256", utf8(text)));
  }

  async function es256(key, signingInput) {
    return b64url(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, utf8(signingInput)));
  }

  // --- keys ---------------------------------------------------------------------------------
  async function importKey(file) {
    var jwk;
    try { jwk = JSON.parse(await file.text()); } catch (e) { throw new Error(t("key_not_json")); }
    if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d) { throw new Error(t("key_not_private")); }
    var key = await crypto.subtle.importKey(
      "jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d, ext: false },
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    return { key: key, kid: jwk.kid || await thumbprint(jwk), clientId: jwk.client_id || null };
  }

  function database() {
    return new Promise(function (resolve, reject) {
      var opening = indexedDB.open(DB, 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore(STORE); };
      opening.onsuccess = function () { resolve(opening.result); };
      opening.onerror = function () { reject(opening.error); };
    });
  }
  async function stored(mode, work) {
    var db = await database();
    return new Promise(function (resolve, reject) {
      var request = work(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = function () { resolve(request.result); db.close(); };
      request.onerror = function () { reject(request.error); db.close(); };
    });
  }

  // --- tokens and the API ---------------------------------------------------------------------
  async function assertion() {
    var s = state.session, now = Math.floor(Date.now() / 1000);
    var header = { alg: "ES256", typ: "JWT", kid: s.clientKid };
    var claims = { iss: s.clientId, sub: s.clientId, aud: root.dataset.tokenUrl, iat: now,
      exp: now + 60, jti: b64url(crypto.getRandomValues(new Uint8Array(16))) };
    var input = b64url(utf8(JSON.stringify(header))) + "." + b64url(utf8(JSON.stringify(claims)));
    return input + "." + await es256(s.client, input);
  }

  async function token() {
    if (state.token && Date.now() / 1000 < state.expires - 30) { return state.token; }
    var form = new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await assertion()
    });
    var response = await fetch("/oauth/token", { method: "POST", body: form });
    var answer = await response.json();
    if (!response.ok) { throw new Error(answer.error_description || t("no_token")); }
    state.token = answer.access_token;
    state.expires = Date.now() / 1000 + answer.expires_in;
    return state.token;
  }

  function problem(answer, status) {
    // an OperationOutcome names every problem; other errors carry a message
    if (answer && answer.resourceType === "OperationOutcome") {
      var error = new Error((answer.issue || []).map(function (i) {
        return i.diagnostics + (i.location ? " (" + i.location + ")" : "");
      }).join("\n"));
      error.issues = answer.issue || [];
      error.status = status;
      return error;
    }
    var plain = new Error((answer && (answer.message || answer.error_description)) || ("HTTP " + status));
    plain.status = status;
    return plain;
  }

  async function api(path, options) {
    options = options || {};
    var headers = Object.assign({ Authorization: "Bearer " + await token() }, options.headers || {});
    var body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = options.type || "application/json";
      body = JSON.stringify(options.json);
    }
    var response = await fetch(path, { method: options.method || "GET", headers: headers, body: body });
    if (options.blob) {
      if (!response.ok) { throw problem(await response.json().catch(function () { return null; }), response.status); }
      return response.blob();
    }
    var text = await response.text();
    var answer = text ? JSON.parse(text) : null;
    if (!response.ok) { throw problem(answer, response.status); }
    return options.withResponse ? { body: answer, response: response } : answer;
  }

  // --- bundle signatures -----------------------------------------------------------------------
  async function signBundle(bundle, key, kid, when) {
    var unsigned = Object.assign({}, bundle);
    delete unsigned.signature;
    var header = b64url(utf8(JSON.stringify({ alg: "ES256", kid: kid })));
    var payload = b64url(utf8(canonical(unsigned)));
    var jws = header + ".." + await es256(key, header + "." + payload);
    var organization = bundle.entry.filter(function (e) {
      return e.resource.resourceType === "Organization";
    })[0];
    unsigned.signature = {
      type: [{ system: "urn:iso-astm:E1762-95:2013", code: "1.2.840.10065.1.12.1.1",
        display: "Author's Signature" }],
      when: (when || new Date()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      who: { reference: organization.fullUrl },
      sigFormat: "application/jose",
      data: b64(jws)
    };
    return unsigned;
  }

  async function sign(bundle) {
    // the clinic-held key signs; a clinic whose key the registry keeps sends it unsigned
    var s = state.session;
    return s.signing ? signBundle(bundle, s.signing, s.signingKid) : bundle;
  }

  // --- signing in and out ------------------------------------------------------------------------
  async function learnClinic() {
    var register = await api("/api/v1/examinations?limit=1");
    var clinic = await (await fetch("/api/v1/clinics/" + encodeURIComponent(register.clinic_id))).json();
    state.clinic = clinic;
    state.quota = register.quota;
    return clinic;
  }

  async function signIn(clientFile, signingFile, typedClientId) {
    var client = await importKey(clientFile);
    var signing = signingFile ? await importKey(signingFile) : null;
    var clientId = (typedClientId || "").trim() || client.clientId;
    if (!clientId) { throw new Error(t("no_client_id")); }
    state.session = { client: client.key, clientKid: client.kid, clientId: clientId,
      signing: signing ? signing.key : null, signingKid: signing ? signing.kid : null };
    state.token = null;
    try {
      await token();
      var clinic = await learnClinic();
      if (signing) {
        var known = (clinic.keys || []).filter(function (k) {
          return k.kid === signing.kid && k.custody === "clinic-held" && k.status === "active";
        });
        if (!known.length) { throw new Error(t("signing_key_unknown")); }
      } else if (!(clinic.keys || []).some(function (k) { return k.custody === "custodial" && k.status === "active"; })) {
        throw new Error(t("signing_key_needed"));
      }
    } catch (error) {
      state.session = null;
      throw error;
    }
    await stored("readwrite", function (store) { return store.put(state.session, "keys"); });
  }

  async function signOut() {
    await stored("readwrite", function (store) { return store.clear(); });
    localStorage.removeItem(DRAFT);
    sessionStorage.clear();
    state.session = null; state.token = null;
    location.assign(root.dataset.home);
  }

  function showSignedIn(signedIn) {
    $("signin").hidden = signedIn;
    $("content").hidden = !signedIn;
    $("account").hidden = !signedIn;
    if (signedIn && state.clinic) {
      $("account-name").textContent = state.clinic.id + " · " + state.clinic.name;
    }
  }

  async function start(onReady) {
    $("signout").addEventListener("click", function () { signOut(); });
    $("signin").addEventListener("submit", async function (event) {
      event.preventDefault();
      var status = $("signin-status");
      say(status, t("signing_in"));
      try {
        await signIn($("client-key").files[0], $("signing-key").files[0], $("client-id").value);
        say(status, "");
        showSignedIn(true);
        await onReady();
      } catch (error) {
        say(status, t("signin_failed") + " " + error.message, true);
      }
    });
    var saved = null;
    try { saved = await stored("readonly", function (store) { return store.get("keys"); }); }
    catch (e) { saved = null; }
    if (!saved) { showSignedIn(false); return; }
    state.session = saved;
    try {
      await learnClinic();
      showSignedIn(true);
      await onReady();
    } catch (error) {
      showSignedIn(false);
      say($("signin-status"), t("signin_failed") + " " + error.message, true);
    }
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return values[name] === undefined ? "" : values[name]; });
  }

  window.Portal = {
    t: t, $: $, say: say, fill: fill, api: api, sign: sign, signBundle: signBundle,
    canonical: canonical, thumbprint: thumbprint, b64url: b64url, start: start,
    state: state, lang: root.dataset.lang, DRAFT: DRAFT,
    custodial: function () { return !state.session.signing; }
  };
})();
