// A clinic key pair made in this browser: the private JWK is saved to a file here, only the
// public JWK is shown, to send to the accreditation body. Nothing is sent by this page.
(function () {
  "use strict";
  var P = window.Portal, $ = P.$, t = P.t;

  $("make-key").addEventListener("click", async function () {
    try {
      var pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
      var jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
      var kid = await P.thumbprint(jwk);
      var secret = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d, kid: kid };
      var clientId = $("keys-client-id").value.trim();
      if (clientId) { secret.client_id = clientId; }
      var pub = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: kid };
      var link = $("key-download");
      if (link.href.indexOf("blob:") === 0) { URL.revokeObjectURL(link.href); }
      link.href = URL.createObjectURL(new Blob([JSON.stringify(secret, null, 2)], { type: "application/json" }));
      link.download = "clinic-key-" + kid.slice(0, 8) + ".jwk.json";
      $("public-key").value = JSON.stringify(pub, null, 2);
      $("made").hidden = false;
      P.say($("keys-status"), P.fill(t("key_made"), { kid: kid }));
    } catch (e) { P.say($("keys-status"), e.message, true); }
  });
  $("account").hidden = true;
})();
