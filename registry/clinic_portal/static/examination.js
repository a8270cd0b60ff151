// One examination: the receipt's verdicts (kept only for this tab), its certificates with the
// printable PDF and QR, amending and withdrawing with a reason.
(function () {
  "use strict";
  var P = window.Portal, $ = P.$, t = P.t;
  var id = document.getElementById("portal").dataset.examination;
  var entry = null;

  function day(iso) { return iso ? iso.slice(0, 10).split("-").reverse().join(".") : ""; }
  function fact(term, text) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term; dd.textContent = text;
    $("facts").appendChild(dt); $("facts").appendChild(dd);
  }

  function showReceipt(receipt) {
    $("receipt").hidden = false;
    var list = $("verdicts");
    list.textContent = "";
    receipt.assessments.forEach(function (a) {
      var li = document.createElement("li");
      li.className = a.met ? "verdict verdict--met" : "verdict verdict--unmet";
      var head = document.createElement("strong");
      head.textContent = a.destination + ": " + (a.met ? P.fill(t("verdict_met"), { id: a.certificate_id || "—", until: day(a.valid_until) }) : t("verdict_unmet"));
      li.appendChild(head);
      if (a.reasons.length) {
        var reasons = document.createElement("ul");
        a.reasons.forEach(function (r) {
          var item = document.createElement("li"); item.textContent = r.text; reasons.appendChild(item);
        });
        li.appendChild(reasons);
      }
      list.appendChild(li);
    });
  }

  async function open(path, name, inline) {
    var blob = await P.api(path, { blob: true });
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    if (inline) { a.target = "_blank"; a.rel = "noopener"; } else { a.download = name; }
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  function certificateItem(c) {
    var li = document.createElement("li");
    li.className = "cert-item cert-item--" + c.status;
    var text = document.createElement("p");
    text.textContent = c.id + " · " + c.destination + " · " + t("cert_" + c.status) + " · " + day(c.valid_from) + "–" + day(c.valid_until);
    li.appendChild(text);
    if (c.status !== "valid") { return li; }
    var base = "/api/v1/certificates/" + encodeURIComponent(c.id);
    var pdf = document.createElement("button");
    pdf.type = "button"; pdf.className = "button"; pdf.textContent = t("print_pdf");
    pdf.dataset.certificate = c.id;
    pdf.addEventListener("click", function () {
      open(base + "/certificate.pdf?lang=" + P.lang, c.id + ".pdf", true).catch(function (e) { P.say($("exam-status"), e.message, true); });
    });
    var qr = document.createElement("button");
    qr.type = "button"; qr.className = "button button--quiet"; qr.textContent = t("show_qr");
    var image = document.createElement("img");
    image.alt = P.fill(t("qr_alt"), { id: c.id }); image.hidden = true; image.className = "qr";
    qr.addEventListener("click", async function () {
      try {
        image.src = URL.createObjectURL(await P.api(base + "/qr.svg", { blob: true }));
        image.hidden = false;
      } catch (e) { P.say($("exam-status"), e.message, true); }
    });
    li.appendChild(pdf); li.appendChild(qr); li.appendChild(image);
    return li;
  }

  async function load() {
    var read = await P.api("/api/v1/examinations/" + encodeURIComponent(id), { withResponse: true });
    var bundle = read.body;
    var register = await P.api("/api/v1/examinations?" + new URLSearchParams({ q: bundle.identifier.value, limit: "5" }));
    entry = register.entries.filter(function (e) { return e.id === id; })[0];
    $("exam-title").textContent = P.fill(t("exam_title"), { number: entry.number });
    $("facts").textContent = "";
    fact(t("person"), entry.holder_name + " · " + day(entry.birth_date) + (entry.document_hint ? " · " + entry.document_hint : ""));
    fact(t("date"), day(entry.examination_date));
    fact(t("destination"), entry.destination || "—");
    fact(t("status"), t("status_" + entry.status) + " · " + P.fill(t("version"), { n: entry.version }));
    var list = $("certificates");
    list.textContent = "";
    if (!entry.certificates.length) {
      var none = document.createElement("li"); none.textContent = t("no_certificates"); list.appendChild(none);
    }
    entry.certificates.forEach(function (c) { list.appendChild(certificateItem(c)); });
    $("actions").hidden = entry.status === "entered-in-error";
    $("amend").href = "/clinic/examinations/new?lang=" + P.lang + "&amend=" + encodeURIComponent(id);
  }

  async function withdraw(event) {
    event.preventDefault();
    var reason = $("withdraw-reason").value.trim();
    if (reason.length < 3) { P.say($("exam-status"), t("reason_needed"), true); return; }
    if (!window.confirm(t("confirm_withdraw"))) { return; }
    try {
      await P.api("/api/v1/examinations/" + encodeURIComponent(id) + "/withdraw", { method: "POST", json: { reason: reason } });
      sessionStorage.removeItem("receipt:" + id);
      $("receipt").hidden = true;
      await load();
      P.say($("exam-status"), t("withdrawn"));
    } catch (e) { P.say($("exam-status"), e.message, true); }
  }

  async function ready() {
    var kept = sessionStorage.getItem("receipt:" + id);
    if (kept) { showReceipt(JSON.parse(kept)); }
    $("withdraw").addEventListener("submit", withdraw);
    try { await load(); } catch (e) { P.say($("exam-status"), e.message, true); }
  }

  P.start(ready);
})();
