/* Service worker for the door scanner, served from /manage/activities/scan-sw.js so that
   its scope covers /manage/activities/<id>/scan. It keeps the scanner page and its
   scripts for use without network; scans themselves are queued by the page (IndexedDB). */
'use strict';

var CACHE = 'sciweek-scanner-v1';
var ASSETS = [
  '/static/css/site.css',
  '/static/css/checkin.css',
  '/static/js/scanner-core.js',
  '/static/js/scanner.js',
  '/static/js/sha256.js',
  '/static/vendor/jsqr/jsQR.js'
];

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(ASSETS); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf('sciweek-scanner-') === 0 && k !== CACHE; })
      .map(function (k) { return caches['delete'](k); }));
  }).then(function () { return self.clients.claim(); }));
});

// The page asks for itself to be kept (it was loaded before this worker controlled it).
self.addEventListener('message', function (event) {
  var urls = (event.data && event.data.cache) || [];
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(urls.filter(isScannerPage).map(function (url) {
      return fetch(url, { credentials: 'same-origin' }).then(function (response) {
        if (response.ok && !response.redirected) { return cache.put(url, response); }
      })['catch'](function () {});
    }));
  }));
});

function isScannerPage(url) {
  return /\/manage\/activities\/\d+\/scan(\?.*)?$/.test(new URL(url, self.location.href).pathname + new URL(url, self.location.href).search);
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (/^\/manage\/activities\/\d+\/scan$/.test(url.pathname)) {
    // Network first, so a fresh page (and CSRF token) is used whenever possible.
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
      }
      return response;
    })['catch'](function () {
      return caches.match(request).then(function (hit) {
        return hit || caches.match(request, { ignoreSearch: true });
      });
    }));
    return;
  }
  if (ASSETS.indexOf(url.pathname) >= 0) {
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(url.pathname, copy); });
      }
      return response;
    })['catch'](function () { return caches.match(url.pathname); }));
  }
});
