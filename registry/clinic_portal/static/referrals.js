// Referral follow-up: a programme facility records each referral accepted, completed or lost.
(function () {
  "use strict";
  var P = window.Portal, $ = P.$, t = P.t;
  var NEXT = { requested: ["accepted", "completed", "lost-to-follow-up"], accepted: ["completed", "lost-to-follow-up"] };

  function day(iso) { return iso ? iso.slice(0, 10).split("-").reverse().join(".") : ""; }

  async function setStatus(referral, status) {
    try {
      await P.api("/api/v1/referrals/" + encodeURIComponent(referral.id) + "/status", { method: "POST", json: { status: status } });
      P.say($("referral-status"), P.fill(t("referral_now"), { status: t("referral_" + status) }));
      await load();
    } catch (e) { P.say($("referral-status"), e.message, true); }
  }

  async function load() {
    var direction = $("direction").value;
    try {
      var answer = await P.api("/api/v1/referrals?direction=" + direction);
      var list = $("referral-list");
      list.textContent = "";
      answer.referrals.forEach(function (r) {
        var li = document.createElement("li");
        li.className = "card referral" + (r.overdue ? " referral--overdue" : "");
        var head = document.createElement("p");
        var person = r.person ? r.person.name + " · " + day(r.person.birth_date) + (r.person.document_hint ? " · " + r.person.document_hint : "") : "";
        head.textContent = person + " — " + r.reason + " — " + t("referral_" + r.status) +
          " · " + P.fill(t("referral_from"), { clinic: r.referring_clinic_id, day: day(r.created_at) }) +
          (r.overdue ? " · " + t("overdue") : "");
        li.appendChild(head);
        if (direction === "incoming") {
          (NEXT[r.status] || []).forEach(function (status) {
            var b = document.createElement("button");
            b.type = "button"; b.className = "button button--quiet";
            b.textContent = t("mark_" + status);
            b.addEventListener("click", function () { setStatus(r, status); });
            li.appendChild(b);
          });
        }
        list.appendChild(li);
      });
      P.say($("referral-status"), answer.referrals.length ? "" : t("no_referrals"));
    } catch (e) { P.say($("referral-status"), e.message, true); }
  }

  P.start(async function () {
    $("filter").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    await load();
  });
})();
