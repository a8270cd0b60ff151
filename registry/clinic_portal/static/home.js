// The clinic's examinations: its quota this year, the list, and search by number or document.
(function () {
  "use strict";
  var P = window.Portal, $ = P.$, t = P.t;

  function cell(row, content) {
    var td = document.createElement("td");
    if (content instanceof Node) { td.appendChild(content); } else { td.textContent = content; }
    row.appendChild(td);
  }

  function day(iso) { return iso ? iso.split("-").reverse().join(".") : ""; }

  function showQuota(quota) {
    var text = quota.limit === null
      ? P.fill(t("quota_none"), quota)
      : P.fill(t("quota_used"), quota);
    P.say($("quota"), text, quota.limit !== null && quota.remaining === 0);
    $("quota-meter").hidden = quota.limit === null;
    if (quota.limit !== null) {
      $("quota-bar").style.width = Math.min(100, Math.round(100 * quota.used / quota.limit)) + "%";
    }
  }

  async function load() {
    var query = new URLSearchParams({ limit: "100" });
    var q = $("q").value.trim();
    if (q) {
      query.set("q", q);
      if ($("document-country").value) { query.set("document_country", $("document-country").value); }
    }
    P.say($("list-status"), t("loading"));
    try {
      var register = await P.api("/api/v1/examinations?" + query.toString());
      showQuota(register.quota);
      var rows = $("register-rows");
      rows.textContent = "";
      register.entries.forEach(function (entry) {
        var row = document.createElement("tr");
        var link = document.createElement("a");
        link.href = "/clinic/examinations/" + encodeURIComponent(entry.id) + "?lang=" + P.lang;
        link.textContent = entry.number;
        cell(row, link);
        cell(row, entry.holder_name + " · " + day(entry.birth_date) + (entry.document_hint ? " · " + entry.document_hint : ""));
        cell(row, day(entry.examination_date));
        cell(row, entry.destination || "—");
        cell(row, t("status_" + entry.status));
        cell(row, entry.certificates.filter(function (c) { return c.status === "valid"; })
          .map(function (c) { return c.id; }).join(", ") || "—");
        rows.appendChild(row);
      });
      P.say($("list-status"), P.fill(t("found"), { shown: register.entries.length, total: register.total }));
    } catch (error) {
      P.say($("list-status"), error.message, true);
    }
  }

  async function ready() {
    var catalogue = await (await fetch("/clinic/catalogue.json?lang=" + P.lang)).json();
    var select = $("document-country");
    if (select.options.length === 1) {
      catalogue.countries.forEach(function (c) {
        var option = document.createElement("option");
        option.value = c.code; option.textContent = c.label + " (" + c.code + ")";
        select.appendChild(option);
      });
      select.value = P.state.clinic.country;
    }
    $("search").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    await load();
  }

  P.start(ready);
})();
