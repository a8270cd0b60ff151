/*
 * The employer page's QR reader: the camera (BarcodeDetector where the browser has it, the
 * vendored jsQR decoder otherwise) or an uploaded photo. Whatever it reads goes into the scan
 * form, which the server answers exactly as it answers a typed certificate number.
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
  var MAX_SIDE = 1600;
  var stream = null;
  var detector = null;
  var decoderLoading = null;
  var submitted = false;

  function say(key) {
    status.textContent = scan.dataset[key] || "";
  }

  function submit(text) {
    if (submitted) {
      return;
    }
    submitted = true;
    stopCamera();
    say("msgChecking");
    field.value = text;
    form.submit();
  }

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
    if (!stream || submitted) {
      return;
    }
    if (video.readyState < 2 || !video.videoWidth) {
      window.setTimeout(watch, 150);
      return;
    }
    decode(video, video.videoWidth, video.videoHeight).then(function (text) {
      if (text) {
        submit(text);
      } else {
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
          submit(text);
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
