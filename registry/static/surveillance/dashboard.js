// The ministry dashboard: signs in with the ministry's client key (kept in this page's memory),
// reads the protected extracts over the public API and draws them. Withheld counts are drawn as
// hatched stubs on the axis, labelled "withheld", never as a gap that reads as zero.
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  var MEASURES = JSON.parse(root.dataset.measures);
  var MESSAGES = JSON.parse(root.dataset.messages);  // in the page's language
  var CATEGORIES = JSON.parse(root.dataset.categories);
  var FINDINGS = [
    "cxr-suggestive-tb", "tb-bact-confirmed", "tb-rif-resistant", "hiv-reactive-screening",
    "hiv-confirmed", "syphilis-reactive", "referrals-made", "referrals-completed"
  ];
  var COLOURS = ["#1f5f99", "#c2571a", "#3f8f3a", "#8c3c9e", "#b8860b", "#2a8c8c", "#9e3c4f",
    "#55606e", "#7a9e1f"];
  var ORDER = ["male", "female", "other", "unknown", "<18", "18-29", "30-59", "60+", "none"];

  function canonical(a, b) {
    // sexes and age bands in the order of the statistics, countries alphabetically, none last
    var i = ORDER.indexOf(a), j = ORDER.indexOf(b);
    if (i >= 0 || j >= 0) { return (i < 0 ? -1 : i) - (j < 0 ? -1 : j); }
    return a < b ? -1 : a > b ? 1 : 0;
  }
  var state = { key: null, clientId: null, kid: null, token: null, expires: 0, charts: {} };

  function $(id) { return document.getElementById(id); }

  function t(key, values) {
    // a message of the page's language with its {name} places filled in
    return MESSAGES[key].replace(/\{(\w+)\}/g, function (_, name) { return String(values[name]); });
  }

  function category(code) { return CATEGORIES[code] || code; }

  function say(element, text, problem) {
    element.textContent = text;
    element.classList.toggle("is-problem", Boolean(problem));
  }

  // --- signing in: private_key_jwt with WebCrypto (ES256) --------------------------------------
  function b64url(bytes) {
    var text = "";
    var view = new Uint8Array(bytes);
    for (var i = 0; i < view.length; i++) { text += String.fromCharCode(view[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function b64urlText(text) { return b64url(new TextEncoder().encode(text)); }

  async function thumbprint(jwk) {
    var canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    return b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
  }

  async function readKey(file) {
    var jwk = JSON.parse(await file.text());
    if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d) {
      throw new Error(t("key_not_private", {}));
    }
    if (!jwk.client_id) {
      throw new Error(t("key_no_client", {}));
    }
    var key = await crypto.subtle.importKey(
      "jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d, ext: false },
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    return { key: key, clientId: jwk.client_id, kid: jwk.kid || await thumbprint(jwk) };
  }

  async function assertion() {
    var now = Math.floor(Date.now() / 1000);
    var header = { alg: "ES256", typ: "JWT", kid: state.kid };
    var claims = {
      iss: state.clientId, sub: state.clientId, aud: root.dataset.tokenUrl,
      iat: now, exp: now + 60, jti: b64url(crypto.getRandomValues(new Uint8Array(16)))
    };
    var signing = b64urlText(JSON.stringify(header)) + "." + b64urlText(JSON.stringify(claims));
    var signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" }, state.key, new TextEncoder().encode(signing));
    return signing + "." + b64url(signature);
  }

  async function token() {
    if (state.token && Date.now() / 1000 < state.expires - 30) { return state.token; }
    var form = new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await assertion()
    });
    var response = await fetch(root.dataset.tokenEndpoint, { method: "POST", body: form });
    var answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.error_description || answer.message || t("no_token", {}));
    }
    state.token = answer.access_token;
    state.expires = Date.now() / 1000 + answer.expires_in;
    return state.token;
  }

  // --- reading extracts ----------------------------------------------------------------------
  function lastQuarter(year) {
    var last = root.dataset.lastClosed.split("-");  // YYYY-MM
    if (Number(last[0]) > year) { return 4; }
    return Math.floor(Number(last[1]) / 3);
  }

  function pause(seconds) {
    return new Promise(function (resolve) { setTimeout(resolve, seconds * 1000); });
  }

  async function extract(params) {
    // 202: the year's suppression pattern is being computed in the background; ask again
    var query = new URLSearchParams(params);
    for (;;) {
      var response = await fetch(root.dataset.extractUrl + "?" + query.toString(), {
        headers: { Authorization: "Bearer " + await token() }
      });
      var answer = await response.json();
      if (response.status === 202) {
        var wait = Math.min(Math.max(Number(response.headers.get("Retry-After")) || 10, 1), 60);
        say($("status"), t("pending", { seconds: wait }));
        await pause(wait);
        continue;
      }
      if (!response.ok) { throw new Error(answer.message || ("HTTP " + response.status)); }
      return answer;
    }
  }

  function series(document, measure, dimension) {
    // {category: {period: value|null}} for one measure; dimension null = the scope's totals
    var out = {};
    document.cells.forEach(function (cell) {
      if (cell.measure !== measure) { return; }
      var others = document.dimensions.slice(1).filter(function (d) {
        return d !== dimension && !(d in document.request.where);
      });
      if (others.some(function (d) { return cell[d] !== "all"; })) { return; }
      var category = dimension ? cell[dimension] : "all";
      if (dimension && category === "all") { return; }
      (out[category] = out[category] || {})[cell.period] = cell.value;
    });
    return out;
  }

  // --- drawing -------------------------------------------------------------------------------
  var hatch = null;

  function hatching(context) {
    if (hatch) { return hatch; }
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var pen = tile.getContext("2d");
    pen.strokeStyle = "#55606e";
    pen.lineWidth = 1.5;
    pen.beginPath();
    pen.moveTo(0, 8); pen.lineTo(8, 0); pen.moveTo(-2, 2); pen.lineTo(2, -2);
    pen.moveTo(6, 10); pen.lineTo(10, 6);
    pen.stroke();
    hatch = context.createPattern(tile, "repeat");
    return hatch;
  }

  // A withheld count is drawn where its bar or point would be: a hatched stub on the axis with
  // the word "withheld" above it, so that it can never be read as zero.
  var WITHHELD = {
    id: "withheld",
    afterDatasetsDraw: function (chart) {
      var context = chart.ctx;
      var base = chart.scales.y.getPixelForValue(0);
      context.save();
      chart.data.datasets.forEach(function (dataset, d) {
        var meta = chart.getDatasetMeta(d);
        if (meta.hidden) { return; }
        dataset.data.forEach(function (value, i) {
          if (value !== null) { return; }
          var element = meta.data[i];
          var x = element && isFinite(element.x) ? element.x : chart.scales.x.getPixelForValue(i);
          var width = element && element.width ? element.width : 10;
          context.fillStyle = hatching(context);
          context.fillRect(x - width / 2, base - 14, width, 14);
          context.strokeStyle = dataset.borderColor;
          context.strokeRect(x - width / 2, base - 14, width, 14);
          if (width >= 44 || chart.data.datasets.length === 1) {
            context.fillStyle = "#33383f";
            context.font = "11px sans-serif";
            context.textAlign = "center";
            context.fillText(t("withheld", {}), x, base - 18);
          }
        });
      });
      context.restore();
    }
  };

  function draw(id, type, periods, datasets) {
    if (state.charts[id]) { state.charts[id].destroy(); }
    var values = [].concat.apply([], datasets.map(function (d) { return d.data; }));
    var hidden = values.filter(function (v) { return v === null; }).length;
    var zeros = values.filter(function (v) { return v === 0; }).length;
    $(id + "-note").textContent = (!values.length ? t("nothing", {}) :
      hidden === values.length ? t("all_withheld", { count: hidden }) :
      zeros === values.length ? t("all_zero", {}) :
      hidden ? t("some_withheld", { hidden: hidden, total: values.length }) : "") +
      (zeros && zeros < values.length ? " " + t("zeros", { count: zeros }) : "");
    state.charts[id] = new Chart($(id), {
      plugins: [WITHHELD],
      type: type,
      data: { labels: periods, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        spanGaps: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }
      }
    });
  }

  function dataset(label, values, periods, index, line) {
    return {
      label: label,
      data: periods.map(function (p) { return values[p] === undefined ? null : values[p]; }),
      backgroundColor: COLOURS[index % COLOURS.length],
      borderColor: COLOURS[index % COLOURS.length],
      borderWidth: line ? 2 : 0,
      pointRadius: line ? 3 : 0
    };
  }

  function withheld(documents) {
    var list = $("withheld-list");
    list.textContent = "";
    var seen = {};
    documents.forEach(function (document) {
      document.cells.forEach(function (cell) {
        if (cell.flag !== "suppressed") { return; }
        var where = document.dimensions.slice(1).filter(function (d) {
          return cell[d] !== "all" && !(d in document.request.where);
        }).map(function (d) { return category(d) + " " + category(cell[d]); });
        var text = cell.period + ": " + MEASURES[cell.measure] +
          (where.length ? " (" + where.join(", ") + ")" : "");
        if (seen[text]) { return; }
        seen[text] = true;
      });
    });
    var texts = Object.keys(seen);
    texts.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    $("withheld-count").textContent = t("withheld_count", { count: texts.length });
  }

  async function refresh() {
    var year = Number($("year").value);
    var scope = $("scope").value;
    var measure = $("measure").value;
    var quarters = lastQuarter(year);
    if (quarters < 1) {
      say($("status"), t("no_quarter", { year: year }), true);
      $("charts").hidden = true;
      return;
    }
    var base = {
      granularity: "quarter", from: year + "-Q1", to: year + "-Q" + quarters,
      scope: scope, format: "json"
    };
    var corridor = scope === "origin" ? "destination" : "origin";
    say($("status"), t("loading", {}));
    var asked = state.asked = (state.asked || 0) + 1;
    try {
      var answers = await Promise.all([
        extract(base),
        extract(Object.assign({ group_by: corridor }, base)),
        extract(Object.assign({ group_by: "sex" }, base)),
        extract(Object.assign({ group_by: "age_band" }, base))
      ]);
    } catch (error) {
      if (asked === state.asked) {
        say($("status"), t("load_failed", { error: error.message }), true);
      }
      return;
    }
    if (asked !== state.asked) { return; }  // the choice changed while this was waiting
    var totals = answers[0];
    var periods = [];
    for (var q = 1; q <= quarters; q++) { periods.push(year + "-Q" + q); }

    draw("chart-examined", "bar", periods,
      [dataset(MEASURES.examined, series(totals, "examined", null).all || {}, periods, 0)]);
    draw("chart-findings", "line", periods, FINDINGS.map(function (m, i) {
      return dataset(MEASURES[m], series(totals, m, null).all || {}, periods, i + 1, true);
    }));
    [["chart-corridor", answers[1], corridor], ["chart-sex", answers[2], "sex"],
      ["chart-age", answers[3], "age_band"]].forEach(function (spec) {
      var byCategory = series(spec[1], measure, spec[2]);
      draw(spec[0], "bar", periods, Object.keys(byCategory).sort(canonical).map(function (c, i) {
        var label = spec[2] === "destination" || spec[2] === "sex" ? category(c) : c;
        return dataset(label, byCategory[c], periods, i, false);
      }));
    });
    $("corridor-title").textContent = t(corridor === "destination" ? "by_destination" :
      "by_origin", { measure: MEASURES[measure] });
    var method = totals.method;
    $("method").textContent = t("method", {
      name: method.name, version: method.version, k: method.k, below: method.k - 1
    });
    withheld(answers);
    $("charts").hidden = false;
    var examined = series(totals, "examined", null).all || {};
    var nobody = periods.every(function (p) { return examined[p] === 0; });
    say($("status"), t("status_" + scope, { year: year, quarters: quarters }) +
      (nobody ? " " + t("nobody_" + scope, {}) : ""));
  }

  $("key-file").addEventListener("change", async function (event) {
    var file = event.target.files[0];
    if (!file) { return; }
    try {
      Object.assign(state, await readKey(file), { token: null });
      await token();
    } catch (error) {
      say($("signin-status"), t("not_signed_in", { error: error.message }), true);
      return;
    }
    say($("signin-status"), t("signed_in", { client: state.clientId }));
    $("controls").hidden = false;
    refresh();
  });
  ["year", "scope", "measure"].forEach(function (id) {
    $(id).addEventListener("change", refresh);
  });
})();
