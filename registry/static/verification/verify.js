/*
 * The employer page's QR reader: the camera (BarcodeDetector where the browser has it, the
 * vendored jsQR decoder otherwise), an uploaded photo or pasted text. What it reads is sent as
 * the scan form, which the server answers exactly as it answers a typed certificate number;
 * the verdict is put into the page, so the camera keeps scanning the next code. Without the
 * network the offline verifier (offline.js) judges the card on this device instead.
 *
 * "I am checking for" is remembered on this device; until it is set, the browser's region
 * (ru-RU: Russia) chooses it when that is a destination the registry knows.
 */
(function () {
  "use strict";

  var scan = document.getElementById("scan");
  if (!scan) {
    return;
  }
  var form = document.getElementById("scan-form");
  var field = document.getElementById("scanned");
  var status = document.getElementById("scan-status");
  var cameraButton = document.getElementById("scan-camera");
  var cameraBox = document.getElementById("camera-box");
  var cameraStop = document.getElementById("camera-stop");
  var video = document.getElementById("camera");
  var photoLabel = document.getElementById("photo-label");
  var photoInput = document.getElementById("photo");
  var live = document.getElementById("live");
  var checkingFor = document.getElementById("for_destination");
  var pasted = document.getElementById("pasted");
  var manual = document.getElementById("manual");
  var CHECKING_FOR = "registry.checkingFor";
  var REPEAT_MS = 5000;
  var MAX_SIDE = 1600;
  var stream = null;
  var detector = null;
  var decoderLoading = null;
  var busy = false;
  var last = { text: null, at: 0 };

  function say(key) {
    status.textContent = scan.dataset[key] || "";
  }

  // -- the country checked for -------------------------------------------------------------
  function offered(code) {
    return Array.prototype.some.call(checkingFor.options, function (option) {
      return option.value === code;
    });
  }

  function regionDefault() {
    var tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
    for (var i = 0; i < tags.length; i += 1) {
      var region = String(tags[i] || "").split("-")[1];
      if (region && offered(region.toUpperCase())) {
        return region.toUpperCase();
      }
    }
    return "";
  }

  function wanted() {
    return checkingFor ? checkingFor.value : "";
  }

  if (checkingFor) {
    var remembered = null;
    try {
      remembered = window.localStorage.getItem(CHECKING_FOR);
    } catch (error) {
      remembered = null;
    }
    checkingFor.value = remembered !== null && (remembered === "" || offered(remembered))
      ? remembered
      : regionDefault();
    checkingFor.addEventListener("change", function () {
      try {
        window.localStorage.setItem(CHECKING_FOR, checkingFor.value);
      } catch (error) {
        return;
      }
    });
  }

  // -- checking what was read ----------------------------------------------------------------
  function show(element) {
    live.replaceChildren(element);
    var verdict = live.querySelector(".verdict");
    if (verdict) {
      verdict.scrollIntoView({ block: "start" });
    }
  }

  function checkOnline(text) {
    var body = new FormData(form);
    body.set("qr", text);
    body.set("for_destination", wanted());
    body.set("partial", "1");
    return fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (response.status >= 500 || response.status === 429) {
          throw new Error("the registry answered " + response.status);
        }
        return response.text();
      }).then(function (html) {
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var holder = document.createElement("div");
        holder.className = "verdict-online";
        Array.prototype.forEach.call(parsed.body.childNodes, function (node) {
          holder.appendChild(document.importNode(node, true));
        });
        return holder;
      });
  }

  function checkOffline(text) {
    return window.RegistryOffline ? window.RegistryOffline.check(text, wanted()) : Promise.reject(new Error("no offline verifier"));
  }

  /* Check what was read; online when the network is there, on this device otherwise. */
  function deliver(text, force) {
    var now = Date.now();
    if (busy || (!force && text === last.text && now - last.at < REPEAT_MS)) {
      return false;
    }
    busy = true;
    last = { text: text, at: now };
    say("msgChecking");
    var checked = navigator.onLine
      ? checkOnline(text).catch(function () { return checkOffline(text); })
      : checkOffline(text);
    checked.then(show, function () {
      field.value = text;
      form.submit();
    }).then(function () {
      busy = false;
      if (stream) {
        say("msgNext");
        window.setTimeout(watch, 200);
      } else {
        status.textContent = "";
      }
    });
    return true;
  }

  if (pasted) {
    pasted.addEventListener("submit", function (event) {
      event.preventDefault();
      deliver(document.getElementById("qr").value, true);
    });
  }
  if (manual) {
    manual.addEventListener("submit", function (event) {
      if (!navigator.onLine && window.RegistryOffline) {
        event.preventDefault();
        show(window.RegistryOffline.typedOffline());
      }
    });
  }
  document.querySelectorAll("input.for-destination").forEach(function (input) {
    input.form.addEventListener("submit", function () {
      input.value = wanted();
    });
  });

  function nativeDetector() {
    if (detector !== null) {
      return Promise.resolve(detector);
    }
    if (!("BarcodeDetector" in window)) {
      return Promise.resolve(null);
    }
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      detector = formats.indexOf("qr_code") >= 0
        ? new window.BarcodeDetector({ formats: ["qr_code"] })
        : null;
      return detector;
    }).catch(function () {
      return null;
    });
  }

  function loadDecoder() {
    if (window.jsQR) {
      return Promise.resolve(window.jsQR);
    }
    if (decoderLoading === null) {
      decoderLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = scan.dataset.decoder;
        script.onload = function () { resolve(window.jsQR); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return decoderLoading;
  }

  function canvasOf(source, width, height) {
    var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    var context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    return { canvas: canvas, context: context };
  }

  /* Resolves with the QR text in the picture, or null. */
  function decode(source, width, height) {
    return nativeDetector().then(function (native) {
      if (native) {
        return native.detect(source).then(function (codes) {
          return codes.length ? codes[0].rawValue : null;
        }).catch(function () { return null; });
      }
      return null;
    }).then(function (text) {
      if (text) {
        return text;
      }
      return loadDecoder().then(function (jsQR) {
        var drawn = canvasOf(source, width, height);
        var pixels = drawn.context.getImageData(0, 0, drawn.canvas.width, drawn.canvas.height);
        var code = jsQR(pixels.data, pixels.width, pixels.height, { inversionAttempts: "attemptBoth" });
        return code ? code.data : null;
      });
    });
  }

  function stopCamera() {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    cameraBox.hidden = true;
    cameraButton.hidden = false;
  }

  function watch() {
    if (!stream || busy) {
      return;
    }
    if (video.readyState < 2 || !video.videoWidth) {
      window.setTimeout(watch, 150);
      return;
    }
    decode(video, video.videoWidth, video.videoHeight).then(function (text) {
      // a code just checked is not checked again while it stays in view
      if (!text || !deliver(text, false)) {
        window.setTimeout(watch, 200);
      }
    }, function () {
      window.setTimeout(watch, 400);
    });
  }

  function startCamera() {
    navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 960 } },
      audio: false
    }).then(function (opened) {
      stream = opened;
      video.srcObject = opened;
      cameraBox.hidden = false;
      cameraButton.hidden = true;
      say("msgLooking");
      return video.play();
    }).then(watch).catch(function () {
      stopCamera();
      say("msgNoCamera");
    });
  }

  function readPhoto(file) {
    say("msgReading");
    var url = URL.createObjectURL(file);
    var image = new Image();
    image.onload = function () {
      decode(image, image.naturalWidth, image.naturalHeight).then(function (text) {
        URL.revokeObjectURL(url);
        if (text) {
          deliver(text, true);
        } else {
          say("msgNoCode");
        }
      }, function () {
        URL.revokeObjectURL(url);
        say("msgNoCode");
      });
    };
    image.onerror = function () {
      URL.revokeObjectURL(url);
      say("msgNoCode");
    };
    image.src = url;
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    cameraButton.hidden = false;
    cameraButton.addEventListener("click", startCamera);
    cameraStop.addEventListener("click", stopCamera);
  }
  photoLabel.hidden = false;
  photoInput.addEventListener("change", function () {
    if (photoInput.files && photoInput.files.length) {
      readPhoto(photoInput.files[0]);
      photoInput.value = "";
    }
  });
  window.addEventListener("pagehide", stopCamera);
})();
