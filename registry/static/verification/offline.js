/*
 * The offline verifier of the employer page. It keeps the registry's signed trust list on the
 * device (checked against the registry's document keys the page names) and judges a scanned
 * SMART Health Card in the browser: the shc:/ digits, ES256 with WebCrypto, the raw-DEFLATE
 * payload with DecompressionStream("deflate-raw"), the issuer's keys, the revocation lists, the
 * clinic's accreditation, the validity dates and the country checked for, in the order of the
 * registry's own verdict (registry/verification/verdict.py). It also installs the service
 * worker that keeps the page and its scripts for use without the network.
 *
 * window.RegistryOffline.check(text, wanted) resolves with a verdict element for the page.
 */
(function () {
  "use strict";

  var template = document.getElementById("offline-verdict");
  if (!template) {
    return;
  }
  var STORE = "registry.trustList";
  var CERTIFICATE_TYPE = "https://exam-registry.org/fhir/examination-certificate";
  var STATEMENT_SYSTEM = "https://exam-registry.org/fhir/CodeSystem/certificate-statement";
  var CERTIFICATE_ID_SYSTEM = "https://exam-registry.org/fhir/certificate-id";
  var CLOCK_SKEW_SECONDS = 300;
  var SUSPENDED = ["suspended", "withdrawn"];
  var data = template.dataset;
  var strings = JSON.parse(data.strings);
  var countries = JSON.parse(data.countries);
  var purposes = JSON.parse(data.purposes);
  var pinnedKeys = JSON.parse(data.keys);
  var state = document.getElementById("offline-state");
  var trust = null; // { document, fetchedAt }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : all;
    });
  }

  function bytesOf(base64url) {
    var text = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) {
      text += "=";
    }
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes;
  }

  function jsonOf(bytes) {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  }

  function inflate(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      return new Uint8Array(buffer);
    });
  }

  function verifySignature(token, jwk) {
    var parts = token.split(".");
    var signature = bytesOf(parts[2]);
    if (signature.length !== 64) {
      return Promise.resolve(false);
    }
    return crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"]
    ).then(function (key) {
      return crypto.subtle.verify(
        { name: "ECDSA", hash: "SHA-256" },
        key,
        signature,
        new TextEncoder().encode(parts[0] + "." + parts[1])
      );
    }).catch(function () {
      return false;
    });
  }

  /* The compact JWS in the text of a single shc:/ QR code; null when it holds none. */
  function tokenOf(text) {
    var trimmed = (text || "").trim();
    if (trimmed.slice(0, 5).toLowerCase() !== "shc:/") {
      return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(trimmed) ? trimmed : null;
    }
    var digits = trimmed.slice(5);
    if (!/^\d+$/.test(digits) || digits.length % 2) {
      return null;
    }
    var token = "";
    for (var i = 0; i < digits.length; i += 2) {
      var value = parseInt(digits.slice(i, i + 2), 10);
      if (value > 77) {
        return null;
      }
      token += String.fromCharCode(value + 45);
    }
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) ? token : null;
  }

  // -- the trust list --------------------------------------------------------------------
  function loadTrust(signed, fetchedAt) {
    var header = jsonOf(bytesOf(signed.split(".")[0]));
    var key = pinnedKeys.filter(function (jwk) { return jwk.kid === header.kid; })[0];
    if (!key || header.alg !== "ES256") {
      return Promise.reject(new Error("the trust list is not signed with a registry key"));
    }
    return verifySignature(signed, key).then(function (good) {
      if (!good) {
        throw new Error("the trust list's signature does not verify");
      }
      return { document: jsonOf(bytesOf(signed.split(".")[1])), fetchedAt: fetchedAt, jws: signed };
    });
  }

  function saved() {
    try {
      var stored = JSON.parse(window.localStorage.getItem(STORE) || "null");
      return stored && stored.jws ? loadTrust(stored.jws, stored.fetchedAt) : Promise.resolve(null);
    } catch (error) {
      return Promise.resolve(null);
    }
  }

  function refresh() {
    return fetch(data.trustList).then(function (response) {
      if (!response.ok) {
        throw new Error("trust list " + response.status);
      }
      return response.json();
    }).then(function (answer) {
      var fetchedAt = new Date().toISOString();
      return loadTrust(answer.jws, fetchedAt).then(function (loaded) {
        window.localStorage.setItem(STORE, JSON.stringify({ jws: answer.jws, fetchedAt: fetchedAt }));
        return loaded;
      });
    });
  }

  function age(since) {
    var minutes = Math.max(0, Math.round((Date.now() - since.getTime()) / 60000));
    if (minutes < 120) {
      return fill(strings.minutes, { n: minutes });
    }
    if (minutes < 48 * 60) {
      return fill(strings.hours, { n: Math.round(minutes / 60) });
    }
    return fill(strings.days, { n: Math.round(minutes / 1440) });
  }

  function moment(date) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(date.getDate()) + "." + two(date.getMonth() + 1) + "." + date.getFullYear() + " " +
      two(date.getHours()) + ":" + two(date.getMinutes());
  }

  function day(iso) {
    var parts = (iso || "").split("-");
    return parts.length === 3 ? parts[2] + "." + parts[1] + "." + parts[0] : iso || "";
  }

  function revocationsAsOf() {
    return new Date(trust.document.revocations_as_of);
  }

  function showState() {
    if (!state || !trust) {
      return;
    }
    var asOf = revocationsAsOf();
    state.textContent = fill(strings.ready, { when: moment(asOf), age: age(asOf) });
    state.dataset.asOf = trust.document.revocations_as_of;
    state.hidden = false;
  }

  // -- judging a card (the order of registry/verification/verdict.py) -------------------
  function component(observation, code) {
    return (observation.component || []).filter(function (part) {
      return part.code && part.code.coding && part.code.coding[0].code === code;
    })[0] || null;
  }

  function claimsOf(payload) {
    var vc = payload.vc || {};
    var entries = ((vc.credentialSubject || {}).fhirBundle || {}).entry || [];
    var byUrl = {};
    entries.forEach(function (entry) { byUrl[entry.fullUrl] = entry.resource; });
    var patient = byUrl["resource:0"];
    var observation = byUrl["resource:1"];
    var statement = observation && observation.code && observation.code.coding &&
      observation.code.coding[0];
    var ours = (vc.type || []).indexOf(CERTIFICATE_TYPE) >= 0 ||
      (statement && statement.system === STATEMENT_SYSTEM);
    if (!ours) {
      return null;
    }
    var destination = component(observation, "destination");
    var purpose = component(observation, "purpose");
    var clinicName = component(observation, "clinic-name");
    var name = patient.name[0];
    return {
      id: observation.identifier.filter(function (i) { return i.system === CERTIFICATE_ID_SYSTEM; })[0].value,
      name: [name.family].concat(name.given || []).join(" "),
      birthDate: patient.birthDate,
      destination: destination.valueCodeableConcept.coding[0].code,
      purpose: purpose.valueCodeableConcept.coding[0].code,
      clinicId: observation.performer[0].identifier.value,
      clinicName: clinicName ? clinicName.valueString : null,
      validFrom: observation.effectivePeriod.start,
      validUntil: observation.effectivePeriod.end
    };
  }

  function revoked(issuer, kid, rid, nbf) {
    var entry = trust.document.revocations.filter(function (r) {
      return r.iss === issuer.iss && r.kid === kid;
    })[0];
    if (!entry || !rid) {
      return null;
    }
    var listed = entry.crl.rids.some(function (item) {
      var parts = String(item).split(".");
      return parts[0] === rid && (parts.length === 1 || nbf < parseInt(parts[1], 10));
    });
    if (!listed) {
      return null;
    }
    return (entry.superseded || []).indexOf(rid) >= 0 ? "superseded" : "revoked";
  }

  function standing(clinic, moment) {
    var dayText = moment.slice(0, 10);
    if (dayText < clinic.accredited_from || (clinic.accredited_until && dayText > clinic.accredited_until)) {
      return "outside-accreditation-window";
    }
    var status = "active";
    clinic.history.slice().sort(function (a, b) {
      return a.effective_at < b.effective_at ? -1 : 1;
    }).forEach(function (event) {
      if (new Date(event.effective_at) <= new Date(moment.length === 10 ? moment + "T23:59:59Z" : moment)) {
        status = event.status;
      }
    });
    return status;
  }

  function judge(token, wanted) {
    var parts = token.split(".");
    var header;
    try {
      header = jsonOf(bytesOf(parts[0]));
    } catch (error) {
      return Promise.resolve({ result: "malformed" });
    }
    if (header.alg !== "ES256") {
      return Promise.resolve({ result: "invalid_signature" });
    }
    if (header.zip !== "DEF") {
      return Promise.resolve({ result: "malformed" });
    }
    return inflate(bytesOf(parts[1])).then(jsonOf).then(function (payload) {
      var issuer = trust.document.issuers.filter(function (i) { return i.iss === payload.iss; })[0];
      if (!issuer) {
        return { result: "untrusted_issuer" };
      }
      var key = issuer.keys.filter(function (k) { return k.kid === header.kid; })[0];
      if (!key) {
        return { result: "invalid_signature" };
      }
      return verifySignature(token, key).then(function (good) {
        if (!good) {
          return { result: "invalid_signature" };
        }
        var claims = claimsOf(payload);
        var ended = revoked(issuer, header.kid, (payload.vc || {}).rid, payload.nbf);
        var verdict = { claims: claims };
        if (ended) {
          verdict.result = ended;
          return verdict;
        }
        if (issuer.status !== "active") {
          verdict.result = "issuer_suspended";
          return verdict;
        }
        if (claims && issuer.kind === "registry") {
          var clinic = trust.document.clinics.filter(function (c) { return c.id === claims.clinicId; })[0];
          if (clinic) {
            var now = standing(clinic, new Date().toISOString());
            var then = standing(clinic, claims.validFrom);
            if (SUSPENDED.indexOf(now) >= 0 || then !== "active") {
              verdict.result = "issuer_suspended";
              return verdict;
            }
          }
        }
        var seconds = Date.now() / 1000;
        var today = new Date().toISOString().slice(0, 10);
        if (payload.nbf > seconds + CLOCK_SKEW_SECONDS || (claims && claims.validFrom > today)) {
          verdict.result = "not_yet_valid";
        } else if ((payload.exp && payload.exp <= seconds) || (claims && claims.validUntil < today)) {
          verdict.result = "expired";
        } else if (!claims) {
          verdict.result = "other_card";
        } else if (wanted && wanted !== claims.destination) {
          verdict.result = "valid_for_other_destination";
        } else {
          verdict.result = "valid";
        }
        return verdict;
      });
    }).catch(function () {
      return { result: "malformed" };
    });
  }

  // -- showing a verdict -----------------------------------------------------------------
  var TONES = {
    valid: ["good", "✓"], expired: ["warn", "!"], not_yet_valid: ["warn", "!"],
    malformed: ["neutral", "?"], other_card: ["neutral", "!"]
  };

  function render(verdict, wanted) {
    var fragment = template.content.cloneNode(true);
    var root = document.createElement("div");
    root.className = "verdict-offline";
    root.appendChild(fragment);
    var result = verdict.result;
    var claims = verdict.claims;
    var tone = TONES[result] || ["bad", "✗"];
    var section = root.querySelector(".verdict");
    section.classList.add("verdict--" + tone[0]);
    section.dataset.result = result === "other_card" ? "valid" : result;
    section.dataset.offline = "true";
    root.querySelector(".verdict__symbol").textContent = tone[1];
    var country = claims ? countries[claims.destination] || claims.destination : "";
    var purpose = claims ? purposes[claims.purpose] || claims.purpose : "";
    var title = strings[result] || strings.malformed;
    var reason = strings[result + "_reason"] || "";
    var advice = strings.do_not_accept;
    if (result === "valid") {
      title = fill(strings.valid, { country: country });
      reason = "";
      advice = strings.valid_advice;
    } else if (result === "valid_for_other_destination") {
      title = fill(strings.other, { country: countries[wanted] || wanted });
      reason = fill(strings.other_reason, {
        country: country, purpose: purpose, wanted: countries[wanted] || wanted
      });
    } else if (result === "expired" && claims) {
      reason = fill(strings.expired_reason, { day: day(claims.validUntil) });
      advice = "";
    } else if (result === "not_yet_valid" && claims) {
      reason = fill(strings.not_yet_valid_reason, { day: day(claims.validFrom) });
      advice = "";
    } else if (result === "malformed" || result === "other_card") {
      advice = "";
    }
    root.querySelector(".verdict__title").textContent = title;
    var purposeLine = root.querySelector(".verdict__purpose");
    purposeLine.textContent = result === "valid" ? fill(strings.purpose, { purpose: purpose }) : "";
    purposeLine.hidden = result !== "valid";
    root.querySelector(".verdict__reason").textContent = reason;
    root.querySelector(".verdict__reason").hidden = !reason;
    root.querySelector(".verdict__advice").textContent = advice;
    root.querySelector(".verdict__advice").hidden = !advice;
    if (claims) {
      root.querySelector(".person__name").textContent = claims.name;
      root.querySelector(".person__birth").textContent = day(claims.birthDate);
      root.querySelector(".certificate__id").textContent = claims.id;
      root.querySelector(".certificate__destination").textContent = country;
      root.querySelector(".certificate__purpose").textContent = purpose;
      root.querySelector(".certificate__clinic").textContent = claims.clinicName || claims.clinicId;
      var ended = result === "revoked" || result === "superseded";
      root.querySelector(".certificate__validity-label").hidden = ended;
      root.querySelector(".certificate__validity").hidden = ended;
      root.querySelector(".certificate__validity").textContent =
        day(claims.validFrom) + " – " + day(claims.validUntil);
    } else {
      root.querySelector(".person").remove();
      root.querySelector(".certificate").remove();
    }
    var asOf = revocationsAsOf();
    root.querySelector(".checked--offline").textContent =
      fill(strings.checked_offline, { when: moment(asOf), age: age(asOf) });
    return root;
  }

  function message(text) {
    var box = document.createElement("p");
    box.className = "notice";
    box.setAttribute("role", "status");
    box.textContent = text;
    return box;
  }

  var ready = (navigator.onLine ? refresh().catch(saved) : saved()).then(function (loaded) {
    trust = loaded || trust;
    showState();
    return trust;
  }, function () {
    return null;
  });

  window.RegistryOffline = {
    ready: ready,
    check: function (text, wanted) {
      return ready.then(function () {
        if (!trust) {
          return message(strings.no_trust_list);
        }
        var token = tokenOf(text);
        var judged = token ? judge(token, wanted || "") : Promise.resolve({ result: "malformed" });
        return judged.then(function (verdict) { return render(verdict, wanted || ""); });
      });
    },
    typedOffline: function () {
      return message(strings.typed_offline);
    }
  };

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/verify/sw.js", { scope: "/verify" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      // the page itself was loaded before its worker ran: keep it for opening offline
      if (navigator.onLine && window.caches) {
        return caches.open("registry-verify-v1").then(function (cache) {
          return cache.add(window.location.pathname + window.location.search);
        });
      }
      return null;
    }).then(function () {
      document.documentElement.dataset.offlineReady = "true";
    }).catch(function () {
      return null; // the page works online without it
    });
  }
})();
