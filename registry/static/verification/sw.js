/*
 * The verification page's service worker (served as /verify/sw.js, scope /verify): it keeps
 * the page in each language it was opened in, its scripts, styles, QR decoder and icon, and
 * the signed trust list, so that /verify opens and checks cards without the network.
 * Pages and the trust list come from the network whenever it answers (and refresh the copy);
 * the kept copy answers only when it does not. Nothing is fetched from anywhere but here.
 */
"use strict";

var CACHE = "registry-verify-v1";
var KEPT = [
  "/static/verification/verify.css",
  "/static/verification/verify.js",
  "/static/verification/offline.js",
  "/static/verification/icon.svg",
  "/static/verification/icon-512.png",
  "/static/vendor/jsqr/jsQR.js",
  "/api/v1/trust-list"
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) { return cache.addAll(KEPT); }).then(function () {
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) { return name !== CACHE; }).map(function (name) {
        return caches.delete(name);
      }));
    }).then(function () { return self.clients.claim(); })
  );
});

function fromNetworkFirst(request) {
  return fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request).then(function (kept) {
      if (kept) {
        return kept;
      }
      // a language not opened before: any kept /verify page rather than none
      return caches.open(CACHE).then(function (cache) {
        return cache.keys().then(function (requests) {
          var page = requests.filter(function (r) { return new URL(r.url).pathname === "/verify"; })[0];
          return page ? cache.match(page) : Response.error();
        });
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) {
    return;
  }
  if (url.pathname === "/verify" || url.pathname === "/api/v1/trust-list" ||
      url.pathname === "/verify/manifest.webmanifest") {
    event.respondWith(fromNetworkFirst(request));
  } else if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (kept) {
      return kept || fetch(request);
    }));
  }
});
