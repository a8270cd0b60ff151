// The examination form: driven by the rulesets in force and our ValueSets, kept as a draft in
// this browser, built into the FHIR document bundle our profile accepts, signed here with the
// clinic-held key (or left unsigned for a custodial key) and submitted to the same API.
(function () {
  "use strict";
  var P = window.Portal, $ = P.$, t = P.t;
  var C = null;           // the catalogue: tests, rulesets, value sets
  var amending = new URLSearchParams(location.search).get("amend");
  var amendedNumber = null;
  var photo = null;       // {type, data (base64)}
  var SNOMED = "http://snomed.info/sct";

  // --- small builders -----------------------------------------------------------------------
  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = value; o.textContent = label; select.appendChild(o); return o;
  }
  function countries(select, blank) {
    select.textContent = "";
    if (blank) { option(select, "", blank); }
    C.countries.forEach(function (c) { option(select, c.code, c.label + " (" + c.code + ")"); });
  }
  function labelled(text, control) {
    var label = document.createElement("label");
    label.className = "field";
    var span = document.createElement("span");
    span.textContent = text;
    label.appendChild(span); label.appendChild(control);
    return label;
  }
  function input(type, value, extra) {
    var i = document.createElement("input");
    i.type = type; i.value = value || "";
    Object.keys(extra || {}).forEach(function (k) { i.setAttribute(k, extra[k]); });
    return i;
  }
  function select(items, value) {
    var s = document.createElement("select");
    items.forEach(function (item) { option(s, item.code, item.label); });
    if (value) { s.value = value; }
    return s;
  }
  function removeButton(row) {
    var b = document.createElement("button");
    b.type = "button"; b.className = "button button--quiet"; b.textContent = t("remove");
    b.addEventListener("click", function () { row.remove(); saveDraft(); });
    return b;
  }
  function uuid() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return "urn:uuid:" + h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function today() { return new Date().toISOString().slice(0, 10); }

  // --- dynamic rows ---------------------------------------------------------------------------
  function addDocument(d) {
    d = d || { type: "passport", country: P.state.clinic.country, number: "", expiry: "" };
    var row = document.createElement("div");
    row.className = "row document";
    var n = $("documents").children.length + 1;
    var type = select(C.document_types, d.type); type.className = "doc-type";
    var country = document.createElement("select"); countries(country); country.value = d.country; country.className = "doc-country";
    var number = input("text", d.number, { autocomplete: "off", maxlength: "64", "class": "doc-number" });
    var expiry = input("date", d.expiry, { "class": "doc-expiry" });
    row.appendChild(labelled(P.fill(t("document_type"), { n: n }), type));
    row.appendChild(labelled(t("issued_by"), country));
    row.appendChild(labelled(t("document_number"), number));
    row.appendChild(labelled(t("valid_until"), expiry));
    row.appendChild(removeButton(row));
    $("documents").appendChild(row);
  }

  function addReferral(r) {
    r = r || { reason: C.referral_reasons[0].code, facility: "" };
    var row = document.createElement("div");
    row.className = "row referral";
    var reason = select(C.referral_reasons, r.reason); reason.className = "ref-reason";
    var facility = input("text", r.facility, { pattern: "[A-Z]{2}-[A-Z]{3}-[0-9]{4}", placeholder: "TJ-AID-0001", "class": "ref-facility" });
    row.appendChild(labelled(t("referral_reason"), reason));
    row.appendChild(labelled(t("facility"), facility));
    row.appendChild(removeButton(row));
    $("referrals").appendChild(row);
  }

  // a test row: a group of acceptable concepts (one to pick), its result and date
  function testRow(group, value, required) {
    var row = document.createElement("div");
    row.className = "row test";
    row.dataset.group = group.join(" ");
    row.dataset.required = required ? "yes" : "no";
    var concept = document.createElement("select");
    concept.className = "test-concept";
    group.forEach(function (key) { option(concept, key, C.tests[key].label); });
    if (value && group.indexOf(value.key) >= 0) { concept.value = value.key; }
    var result = document.createElement("select");
    result.className = "test-result";
    function results() {
      var keep = result.value || (value && value.result);
      result.textContent = "";
      option(result, "", "—");
      C.tests[concept.value].results.forEach(function (r) { option(result, r.code, r.label); });
      result.value = keep && Array.prototype.some.call(result.options, function (o) { return o.value === keep; }) ? keep : "";
    }
    results();
    concept.addEventListener("change", function () { results(); saveDraft(); });
    var date = input("date", value ? value.date : $("exam-date").value, { "class": "test-date" });
    var error = document.createElement("span");
    error.className = "field__error"; error.setAttribute("aria-live", "polite");
    date.addEventListener("input", function () { checkTestDate(date, error); });
    var title = group.length > 1 ? t("one_of") : C.tests[group[0]].label;
    var conceptField = labelled(title, concept);
    if (group.length === 1) { concept.hidden = true; conceptField.classList.add("field--fixed"); }
    row.appendChild(conceptField);
    row.appendChild(labelled(t("result"), result));
    var dateField = labelled(t("test_date"), date);
    dateField.appendChild(error);
    row.appendChild(dateField);
    if (!required) { row.appendChild(removeButton(row)); }
    return row;
  }

  function testValues() {
    return Array.prototype.map.call(document.querySelectorAll("#tests .test"), function (row) {
      return { key: row.querySelector(".test-concept").value, result: row.querySelector(".test-result").value,
        date: row.querySelector(".test-date").value, group: row.dataset.group.split(" "),
        required: row.dataset.required === "yes" };
    });
  }

  // --- the rulesets decide what is asked -----------------------------------------------------------
  function age() {
    var birth = $("birth-date").value, on = $("exam-date").value || today();
    if (!birth) { return 30; }
    var years = Number(on.slice(0, 4)) - Number(birth.slice(0, 4));
    return on.slice(5) < birth.slice(5) ? years - 1 : years;
  }

  function chosenDestinations() {
    var chosen = [];
    var main = document.querySelector("input[name=destination]:checked");
    if (main) { chosen.push(main.value); }
    document.querySelectorAll("input[name=also]:checked").forEach(function (box) {
      if (chosen.indexOf(box.value) < 0) { chosen.push(box.value); }
    });
    return chosen;
  }

  function requiredGroups() {
    var groups = [], seen = {}, years = age();
    chosenDestinations().forEach(function (destination) {
      var ruleset = C.rulesets.filter(function (r) { return r.destination === destination; })[0];
      if (!ruleset) { return; }
      var rules = ruleset.age_rules.filter(function (r) { return years < r.below_age; })
        .sort(function (a, b) { return a.below_age - b.below_age; });
      (rules.length ? rules[0].required : ruleset.required).forEach(function (group) {
        var key = group.join(" ");
        if (!seen[key]) { seen[key] = true; groups.push(group); }
      });
    });
    return groups;
  }

  function renderDestinations(keep) {
    var purpose = $("purpose").value;
    var eligible = C.rulesets.filter(function (r) { return r.purposes.indexOf(purpose) >= 0; });
    ["destinations", "also"].forEach(function (id) {
      var box = $(id), name = id === "destinations" ? "destination" : "also";
      box.textContent = "";
      eligible.forEach(function (r) {
        var label = document.createElement("label");
        label.className = "check";
        var control = input(name === "destination" ? "radio" : "checkbox", r.destination, { name: name });
        control.checked = (keep[name] || []).indexOf(r.destination) >= 0;
        control.addEventListener("change", function () { renderTests(); saveDraft(); });
        label.appendChild(control);
        label.appendChild(document.createTextNode(" " + countryName(r.destination)));
        box.appendChild(label);
      });
    });
    $("destination-box").hidden = purpose !== "pre-departure" && purpose !== "in-host" && purpose !== "periodic";
    if (!eligible.length) { $("also-box").hidden = true; }
  }

  function countryName(code) {
    var c = C.countries.filter(function (x) { return x.code === code; })[0];
    return c ? c.label : code;
  }

  function renderTests(values) {
    var existing = values || testValues();
    var box = $("tests");
    box.textContent = "";
    var used = {};
    requiredGroups().forEach(function (group) {
      var value = existing.filter(function (v) { return group.indexOf(v.key) >= 0 && !used[v.key]; })[0];
      if (value) { used[value.key] = true; }
      box.appendChild(testRow(group, value, true));
    });
    existing.forEach(function (v) {
      if (!used[v.key] && v.key) { used[v.key] = true; box.appendChild(testRow([v.key], v, false)); }
    });
  }

  // --- dates are checked as they are typed -----------------------------------------------------------
  function setError(id, text) {
    var element = $(id + "-error");
    if (element) { element.textContent = text || ""; }
    var field = $(id);
    if (field) { field.setAttribute("aria-invalid", text ? "true" : "false"); }
    return !text;
  }

  function checkDate(id) {
    var value = $(id).value, now = today();
    if (!value) { return setError(id, $(id).required ? t("date_needed") : ""); }
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) { return setError(id, t("date_invalid")); }
    if (id === "exam-date") {
      if (value > now) { return setError(id, t("date_future")); }
      if ($("birth-date").value && value < $("birth-date").value) { return setError(id, t("exam_before_birth")); }
    }
    if (id === "birth-date" || id === "worker-birth") {
      if (value > now) { return setError(id, t("date_future")); }
      if (Number(value.slice(0, 4)) < Number(now.slice(0, 4)) - 120) { return setError(id, t("birth_too_old")); }
    }
    if (id === "lookup-birth" && value > now) { return setError(id, t("date_future")); }
    return setError(id, "");
  }

  function checkTestDate(date, error) {
    var value = date.value, exam = $("exam-date").value, text = "";
    if (!value) { text = t("date_needed"); }
    else if (value > today()) { text = t("date_future"); }
    else if (exam && value < addDays(exam, -90)) { text = t("test_too_early"); }
    else if (exam && value > addDays(exam, 30)) { text = t("test_too_late"); }
    error.textContent = text;
    date.setAttribute("aria-invalid", text ? "true" : "false");
    return !text;
  }

  function addDays(iso, days) {
    var d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }

  // --- the model: collected, restored, saved as a draft ---------------------------------------------------
  function value(id) { return $(id).value.trim(); }

  function collect() {
    var main = document.querySelector("input[name=destination]:checked");
    return {
      amend: amending, number: value("number"), date: $("exam-date").value, purpose: $("purpose").value,
      destination: main ? main.value : "",
      also: Array.prototype.map.call(document.querySelectorAll("input[name=also]:checked"), function (b) { return b.value; }),
      physician: { family: value("physician-family"), given: value("physician-given"), licence: value("licence") },
      person: { family: [value("family-latin"), value("family-cyrillic")], given: [value("given-latin"), value("given-cyrillic")],
        patronymic: [value("patronymic-latin"), value("patronymic-cyrillic")], sex: $("sex").value,
        birth: $("birth-date").value, citizenship: $("citizenship").value },
      documents: Array.prototype.map.call(document.querySelectorAll("#documents .document"), function (row) {
        return { type: row.querySelector(".doc-type").value, country: row.querySelector(".doc-country").value,
          number: row.querySelector(".doc-number").value.trim(), expiry: row.querySelector(".doc-expiry").value };
      }),
      photo: photo,
      tests: testValues().map(function (v) { return { key: v.key, result: v.result, date: v.date }; }),
      consent: $("consent").checked, share: $("share-history").checked,
      referrals: Array.prototype.map.call(document.querySelectorAll("#referrals .referral"), function (row) {
        return { reason: row.querySelector(".ref-reason").value, facility: row.querySelector(".ref-facility").value.trim() };
      }),
      dependant: $("is-dependant").checked ? {
        relationship: $("worker-relationship").value,
        family: [value("worker-family-latin"), value("worker-family-cyrillic")],
        given: [value("worker-given-latin"), value("worker-given-cyrillic")],
        sex: $("worker-sex").value, birth: $("worker-birth").value,
        country: $("worker-country").value, number: value("worker-passport")
      } : null
    };
  }

  function put(id, v) { if (v !== undefined && v !== null) { $(id).value = v; } }

  function restore(m) {
    put("number", m.number); put("exam-date", m.date); put("purpose", m.purpose || "pre-departure");
    renderDestinations({ destination: m.destination ? [m.destination] : [], also: m.also || [] });
    put("physician-family", m.physician.family); put("physician-given", m.physician.given); put("licence", m.physician.licence);
    put("family-latin", m.person.family[0]); put("family-cyrillic", m.person.family[1]);
    put("given-latin", m.person.given[0]); put("given-cyrillic", m.person.given[1]);
    put("patronymic-latin", m.person.patronymic[0]); put("patronymic-cyrillic", m.person.patronymic[1]);
    put("sex", m.person.sex); put("birth-date", m.person.birth); put("citizenship", m.person.citizenship);
    $("documents").textContent = "";
    (m.documents.length ? m.documents : [null]).forEach(addDocument);
    showPhoto(m.photo);
    renderTests(m.tests);
    $("consent").checked = Boolean(m.consent); $("share-history").checked = Boolean(m.share);
    $("referrals").textContent = "";
    (m.referrals || []).forEach(addReferral);
    $("is-dependant").checked = Boolean(m.dependant);
    $("worker").hidden = !m.dependant;
    if (m.dependant) {
      var d = m.dependant;
      put("worker-relationship", d.relationship); put("worker-family-latin", d.family[0]); put("worker-family-cyrillic", d.family[1]);
      put("worker-given-latin", d.given[0]); put("worker-given-cyrillic", d.given[1]); put("worker-sex", d.sex);
      put("worker-birth", d.birth); put("worker-country", d.country); put("worker-passport", d.number);
    }
  }

  function saveDraft() {
    try { localStorage.setItem(P.DRAFT, JSON.stringify(collect())); }
    catch (e) { P.say($("form-status"), t("draft_not_saved"), true); }
  }

  function blank() {
    var now = today();
    return { amend: null, number: "", date: now, purpose: P.state.clinic.purposes[0], destination: "", also: [],
      physician: { family: "", given: "", licence: "" },
      person: { family: ["", ""], given: ["", ""], patronymic: ["", ""], sex: "", birth: "", citizenship: P.state.clinic.country },
      documents: [], photo: null, tests: [], consent: false, share: false, referrals: [], dependant: null };
  }

  // --- the photo ---------------------------------------------------------------------------------------------
  function showPhoto(p) {
    photo = p || null;
    $("photo-preview").hidden = !photo;
    $("photo-remove").hidden = !photo;
    if (photo) { $("photo-preview").src = "data:" + photo.type + ";base64," + photo.data; }
    else { $("photo-preview").removeAttribute("src"); }
  }

  function fromCanvas(source, width, height) {
    // a passport-like portrait, small enough for the profile's limit and the registry's storage
    var scale = Math.min(1, 480 / Math.max(width, height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale); canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    var url = canvas.toDataURL("image/jpeg", 0.85);
    showPhoto({ type: "image/jpeg", data: url.split(",")[1] });
    saveDraft();
  }

  function photoFromFile(file) {
    var image = new Image();
    var url = URL.createObjectURL(file);
    image.onload = function () { fromCanvas(image, image.naturalWidth, image.naturalHeight); URL.revokeObjectURL(url); };
    image.onerror = function () { P.say($("form-status"), t("photo_unreadable"), true); };
    image.src = url;
  }

  var stream = null;
  async function cameraStart() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" } });
      var view = $("camera-view");
      view.srcObject = stream; view.hidden = false; await view.play();
      $("camera-take").hidden = false;
    } catch (error) {
      P.say($("form-status"), t("camera_unavailable"), true);
    }
  }
  function cameraTake() {
    var view = $("camera-view");
    fromCanvas(view, view.videoWidth, view.videoHeight);
    stream.getTracks().forEach(function (track) { track.stop(); });
    view.hidden = true; $("camera-take").hidden = true;
  }

  // --- the FHIR bundle ---------------------------------------------------------------------------------------------
  function when(day, hour) {
    // a moment on the given day; today's is a minute ago, so nothing is dated in the future
    var moment = new Date(day + "T" + hour + ":00Z");
    var ago = new Date(Date.now() - 60000);
    return (moment > ago ? ago : moment).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function coding(system, code) { return { coding: [{ system: system, code: code }] }; }

  function names(family, given, patronymic) {
    var out = [];
    [0, 1].forEach(function (script) {
      if (!family[script] && !given[script]) { return; }
      var name = { use: "official", family: family[script], given: [given[script]] };
      if (patronymic && patronymic[script]) {
        name.extension = [{ url: C.canonical + "/StructureDefinition/patronymic", valueString: patronymic[script] }];
      }
      out.push(name);
    });
    return out;
  }

  function document_(d) {
    var out = { use: "official", type: coding(C.canonical + "/CodeSystem/identity-document-type", d.type),
      system: C.canonical + "/sid/identity-document/" + d.country, value: d.number };
    if (d.expiry) { out.period = { end: d.expiry }; }
    return out;
  }

  function build(m) {
    var clinic = P.state.clinic;
    var url = { composition: uuid(), patient: uuid(), organization: uuid(), practitioner: uuid(), encounter: uuid(), consent: uuid() };
    var patient = { resourceType: "Patient", identifier: m.documents.map(document_),
      name: names(m.person.family, m.person.given, m.person.patronymic), gender: m.person.sex, birthDate: m.person.birth };
    if (m.person.citizenship) {
      patient.extension = [{ url: "http://hl7.org/fhir/StructureDefinition/patient-citizenship",
        extension: [{ url: "code", valueCodeableConcept: coding("urn:iso:std:iso:3166", m.person.citizenship) }] }];
    }
    if (m.photo) { patient.photo = [{ contentType: m.photo.type, data: m.photo.data }]; }
    var entries = [], results = [], referrals = [], identity = [{ reference: url.patient }];
    var ref = function (u) { return { reference: u }; };
    m.tests.forEach(function (test) {
      var concept = C.tests[test.key];
      var result = concept.results.filter(function (r) { return r.code === test.result; })[0];
      var u = uuid();
      var code = { coding: [{ system: concept.code.system, code: concept.code.code, display: concept.display }] };
      if (concept.category === "exam") { code.text = concept.display; }
      results.push(ref(u));
      entries.push({ fullUrl: u, resource: { resourceType: "Observation", status: "final",
        category: [coding("http://terminology.hl7.org/CodeSystem/observation-category", concept.category)],
        code: code, subject: ref(url.patient), encounter: ref(url.encounter),
        effectiveDateTime: when(test.date, "10:00"), performer: [ref(url.practitioner)],
        valueCodeableConcept: coding(result.system, result.code) } });
    });
    m.referrals.forEach(function (r) {
      var u = uuid();
      var request = { resourceType: "ServiceRequest", status: "active", intent: "order",
        reasonCode: [coding(C.canonical + "/CodeSystem/referral-reason", r.reason)],
        subject: ref(url.patient), encounter: ref(url.encounter), requester: ref(url.practitioner) };
      if (r.facility) { request.performer = [{ identifier: { system: C.canonical + "/sid/clinic", value: r.facility } }]; }
      referrals.push(ref(u));
      entries.push({ fullUrl: u, resource: request });
    });
    if (m.dependant) {
      var d = m.dependant, u = uuid();
      identity.push(ref(u));
      entries.push({ fullUrl: u, resource: { resourceType: "RelatedPerson", patient: ref(url.patient),
        relationship: [coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", d.relationship)],
        identifier: [document_({ type: "passport", country: d.country, number: d.number })],
        name: names(d.family, d.given, null), gender: d.sex, birthDate: d.birth } });
    }
    var sections = [
      { title: "Identity", code: coding(C.canonical + "/CodeSystem/composition-section", "identity"), entry: identity },
      { title: "Results", code: coding(C.canonical + "/CodeSystem/composition-section", "results"), entry: results }
    ];
    if (referrals.length) {
      sections.push({ title: "Referrals", code: coding(C.canonical + "/CodeSystem/composition-section", "referrals"), entry: referrals });
    }
    var composition = { resourceType: "Composition", status: "final",
      type: coding(C.canonical + "/CodeSystem/document-type", "examination-record"),
      category: [coding(C.canonical + "/CodeSystem/exam-purpose", m.purpose)],
      subject: ref(url.patient), encounter: ref(url.encounter), date: when(today(), "23:59"),
      author: [ref(url.practitioner), ref(url.organization)],
      title: "Medical examination of a labour migrant", custodian: ref(url.organization), section: sections };
    if (m.destination && m.purpose !== "return") {
      composition.extension = [{ url: C.canonical + "/StructureDefinition/destination-country", valueCode: m.destination }];
    }
    var provision = { type: "permit", code: [coding(C.canonical + "/CodeSystem/consent-provision", "registry-processing")] };
    if (m.share) {
      provision.provision = [{ type: "permit", code: [coding(C.canonical + "/CodeSystem/consent-provision", "share-history")] }];
    }
    return {
      resourceType: "Bundle",
      identifier: { system: C.canonical + "/sid/clinic/" + clinic.id + "/examination", value: m.number },
      type: "document", timestamp: when(today(), "23:59"),
      entry: [
        { fullUrl: url.composition, resource: composition },
        { fullUrl: url.patient, resource: patient },
        { fullUrl: url.organization, resource: { resourceType: "Organization",
          identifier: [{ system: C.canonical + "/sid/clinic", value: clinic.id }], active: true, name: clinic.name,
          address: [{ city: clinic.city || undefined, country: clinic.country }] } },
        { fullUrl: url.practitioner, resource: { resourceType: "Practitioner",
          identifier: [{ system: C.canonical + "/sid/practitioner-licence/" + clinic.country, value: m.physician.licence }],
          name: [{ family: m.physician.family, given: [m.physician.given] }] } },
        { fullUrl: url.encounter, resource: { resourceType: "Encounter", status: "finished",
          "class": { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB", display: "ambulatory" },
          subject: ref(url.patient), participant: [{ individual: ref(url.practitioner) }],
          period: { start: when(m.date, "08:00"), end: when(m.date, "08:30") }, serviceProvider: ref(url.organization) } },
        { fullUrl: url.consent, resource: { resourceType: "Consent", status: "active",
          scope: coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
          category: [coding(C.canonical + "/CodeSystem/consent-provision", "registry-processing")],
          patient: ref(url.patient), dateTime: when(m.date, "08:00"), organization: [ref(url.organization)],
          policy: [{ uri: "https://exam-registry.org/legal/consent/v1" }], provision: provision } }
      ].concat(entries)
    };
  }

  // the form again from a stored bundle (amending): the reverse of build
  function fromBundle(bundle) {
    var m = blank(), by = {};
    bundle.entry.forEach(function (e) { (by[e.resource.resourceType] = by[e.resource.resourceType] || []).push(e.resource); });
    var composition = by.Composition[0], patient = by.Patient[0];
    m.number = bundle.identifier.value;
    m.purpose = composition.category[0].coding[0].code;
    (composition.extension || []).forEach(function (x) { if (/destination-country$/.test(x.url)) { m.destination = x.valueCode; } });
    m.date = by.Encounter[0].period.start.slice(0, 10);
    var practitioner = by.Practitioner[0];
    m.physician = { family: practitioner.name[0].family, given: (practitioner.name[0].given || [""])[0], licence: practitioner.identifier[0].value };
    var latin = patient.name.filter(function (n) { return !/[\u0400-\u04FF]/.test(n.family + (n.given || []).join("")); })[0] || {};
    var cyrillic = patient.name.filter(function (n) { return n !== latin; })[0] || {};
    function patronymic(n) { return ((n.extension || []).filter(function (x) { return /patronymic$/.test(x.url); })[0] || {}).valueString || ""; }
    m.person = { family: [latin.family || "", cyrillic.family || ""], given: [(latin.given || [""])[0], (cyrillic.given || [""])[0]],
      patronymic: [patronymic(latin), patronymic(cyrillic)], sex: patient.gender, birth: patient.birthDate,
      citizenship: ((((patient.extension || [])[0] || {}).extension || [{}])[0].valueCodeableConcept || { coding: [{}] }).coding[0].code || "" };
    m.documents = (patient.identifier || []).map(function (i) {
      return { type: i.type.coding[0].code, country: i.system.split("/").pop(), number: i.value, expiry: (i.period || {}).end || "" };
    });
    m.photo = patient.photo ? { type: patient.photo[0].contentType, data: patient.photo[0].data } : null;
    m.tests = (by.Observation || []).map(function (o) {
      var c = o.code.coding[0];
      var key = Object.keys(C.tests).filter(function (k) {
        var test = C.tests[k];
        return (test.code.system === c.system && test.code.code === c.code) || (c.system === "http://loinc.org" && test.loinc.indexOf(c.code) >= 0);
      })[0];
      return { key: key, result: o.valueCodeableConcept.coding[0].code, date: o.effectiveDateTime.slice(0, 10) };
    }).filter(function (test) { return test.key; });
    var consent = by.Consent[0];
    m.consent = true;
    m.share = Boolean(consent.provision.provision);
    m.referrals = (by.ServiceRequest || []).map(function (s) {
      return { reason: s.reasonCode[0].coding[0].code, facility: s.performer ? s.performer[0].identifier.value : "" };
    });
    var related = (by.RelatedPerson || [])[0];
    if (related) {
      var rl = related.name[0] || {}, rc = related.name[1] || {};
      m.dependant = { relationship: related.relationship[0].coding[0].code, family: [rl.family || "", rc.family || ""],
        given: [(rl.given || [""])[0], (rc.given || [""])[0]], sex: related.gender, birth: related.birthDate,
        country: related.identifier[0].system.split("/").pop(), number: related.identifier[0].value };
    }
    m.amend = amending;
    return m;
  }

  // --- checking and submitting -------------------------------------------------------------------------------------
  function problems(m) {
    var found = [];
    function need(ok, key, id) { if (!ok) { found.push({ text: t(key), id: id }); } }
    need(m.number, "need_number", "number");
    need(checkDate("exam-date"), "need_exam_date", "exam-date");
    need(m.purpose !== "pre-departure" || m.destination, "need_destination", "destinations");
    need(m.physician.family && m.physician.given && m.physician.licence, "need_physician", "physician-family");
    need(m.person.family[0] && m.person.given[0], "need_latin_name", "family-latin");
    need(m.person.sex, "need_sex", "sex");
    need(checkDate("birth-date"), "need_birth_date", "birth-date");
    need(m.documents.length && m.documents.every(function (d) { return d.number; }), "need_document", "documents");
    need(m.tests.every(function (x) { return x.result; }), "need_results", "tests");
    need(Array.prototype.every.call(document.querySelectorAll("#tests .test"), function (row) {
      return checkTestDate(row.querySelector(".test-date"), row.querySelector(".field__error"));
    }), "need_test_dates", "tests");
    need(m.consent, "need_consent", "consent");
    need(m.referrals.every(function (r) { return /^[A-Z]{2}-[A-Z]{3}-\d{4}$/.test(r.facility) || !r.facility; }), "need_facility", "referrals");
    if (m.dependant) {
      need(m.dependant.family[0] && m.dependant.given[0] && m.dependant.number && m.dependant.birth, "need_worker", "worker-family-latin");
    }
    return found;
  }

  function showProblems(list) {
    var box = $("problems");
    box.textContent = "";
    list.forEach(function (p) {
      var li = document.createElement("li");
      if (p.id && $(p.id)) {
        var a = document.createElement("a");
        a.href = "#" + p.id; a.textContent = p.text; li.appendChild(a);
      } else { li.textContent = p.text; }
      box.appendChild(li);
    });
  }

  async function submit(event) {
    event.preventDefault();
    var m = collect();
    var found = problems(m);
    showProblems(found);
    if (found.length) { P.say($("form-status"), t("fix_first"), true); return; }
    $("submit").disabled = true;
    P.say($("form-status"), P.custodial() ? t("submitting") : t("signing"));
    try {
      var bundle = await P.sign(build(m));
      var path = amending ? "/api/v1/examinations/" + encodeURIComponent(amending) : "/api/v1/examinations";
      var receipt = await P.api(path, { method: amending ? "PUT" : "POST", json: bundle, type: "application/fhir+json" });
      sessionStorage.setItem("receipt:" + receipt.id, JSON.stringify(receipt));
      localStorage.removeItem(P.DRAFT);
      location.assign("/clinic/examinations/" + encodeURIComponent(receipt.id) + "?lang=" + P.lang + "&receipt=1");
    } catch (error) {
      showProblems((error.issues || [{ diagnostics: error.message }]).map(function (i) {
        return { text: i.diagnostics + (i.location ? " (" + i.location + ")" : "") };
      }));
      P.say($("form-status"), t("refused"), true);
      $("submit").disabled = false;
    }
  }

  // --- the duplicate lookup --------------------------------------------------------------------------------------------
  async function lookup(event) {
    event.preventDefault();
    if (!checkDate("lookup-birth") || !value("lookup-number")) { P.say($("lookup-result"), t("lookup_needs"), true); return; }
    var body = { document: { country: $("lookup-country").value, number: value("lookup-number") }, birth_date: $("lookup-birth").value };
    if ($("lookup-destination").value) { body.destination = $("lookup-destination").value; }
    try {
      var answer = await P.api("/api/v1/persons/lookup", { method: "POST", json: body });
      if (answer.holds_valid_certificate) {
        P.say($("lookup-result"), P.fill(t("lookup_holds"), { certificates: answer.certificates.map(function (c) {
          return c.id + " (" + c.destination + ", " + c.valid_until.split("-").reverse().join(".") + ")"; }).join(", ") }), true);
      } else {
        P.say($("lookup-result"), t("lookup_none"));
        if (!amending) {
          // carry what was typed into the new examination
          if (!value("birth-date")) { $("birth-date").value = body.birth_date; }
          var first = document.querySelector("#documents .document");
          if (first && !first.querySelector(".doc-number").value) {
            first.querySelector(".doc-number").value = body.document.number;
            first.querySelector(".doc-country").value = body.document.country;
          }
          saveDraft();
        }
      }
    } catch (error) { P.say($("lookup-result"), error.message, true); }
  }

  // --- starting ---------------------------------------------------------------------------------------------------------
  async function ready() {
    C = await (await fetch("/clinic/catalogue.json?lang=" + P.lang)).json();
    countries($("lookup-country")); $("lookup-country").value = P.state.clinic.country;
    C.rulesets.forEach(function (r) { option($("lookup-destination"), r.destination, countryName(r.destination)); });
    countries($("citizenship"), "—"); countries($("worker-country"));
    $("worker-country").value = P.state.clinic.country;
    var purposes = C.purposes.filter(function (p) { return P.state.clinic.purposes.indexOf(p.code) >= 0; });
    purposes.forEach(function (p) { option($("purpose"), p.code, p.label); });
    C.relationships.forEach(function (r) { option($("worker-relationship"), r.code, r.label); });
    option($("extra-test"), "", "—");
    Object.keys(C.tests).forEach(function (k) { option($("extra-test"), k, C.tests[k].label); });
    $("signing-note").textContent = P.custodial() ? t("custodial_note") : t("clinic_held_note");
    $("submit").textContent = P.custodial() ? t("submit") : t("sign_and_submit");

    var draft = null;
    try { draft = JSON.parse(localStorage.getItem(P.DRAFT) || "null"); } catch (e) { draft = null; }
    if (amending) {
      $("form-title").textContent = t("amend_title");
      $("lookup").hidden = true;
      if (draft && draft.amend === amending) { restore(draft); }
      else {
        var bundle = await P.api("/api/v1/examinations/" + encodeURIComponent(amending));
        restore(fromBundle(bundle));
      }
      amendedNumber = $("number").value;
      $("number").readOnly = true;
    } else if (draft && !draft.amend) {
      restore(draft);
      P.say($("form-status"), t("draft_restored"));
    } else {
      restore(blank());
    }

    $("exam").addEventListener("input", saveDraft);
    $("exam").addEventListener("change", saveDraft);
    ["exam-date", "birth-date", "worker-birth", "lookup-birth"].forEach(function (id) {
      $(id).addEventListener("input", function () { checkDate(id); });
    });
    $("birth-date").addEventListener("change", function () { renderTests(); });
    $("purpose").addEventListener("change", function () { renderDestinations({}); renderTests(); saveDraft(); });
    $("add-document").addEventListener("click", function () { addDocument(); saveDraft(); });
    $("add-referral").addEventListener("click", function () { addReferral(); saveDraft(); });
    $("add-test").addEventListener("click", function () {
      var key = $("extra-test").value;
      if (key) { $("tests").appendChild(testRow([key], null, false)); $("extra-test").value = ""; saveDraft(); }
    });
    $("is-dependant").addEventListener("change", function () { $("worker").hidden = !$("is-dependant").checked; });
    $("photo-file").addEventListener("change", function () { if (this.files[0]) { photoFromFile(this.files[0]); } });
    $("camera-start").addEventListener("click", cameraStart);
    $("camera-take").addEventListener("click", cameraTake);
    $("photo-remove").addEventListener("click", function () { showPhoto(null); saveDraft(); });
    $("discard").addEventListener("click", function () {
      localStorage.removeItem(P.DRAFT);
      if (amending) { location.reload(); } else { restore(blank()); }
    });
    $("exam").addEventListener("submit", submit);
    $("lookup").addEventListener("submit", lookup);
  }

  window.PortalForm = { build: build, collect: collect };
  P.start(ready);
})();
