/* Projector: a fresh signed self check-in code every 30 s, shown as a QR code, and the live
   counter every few seconds (data-counts-refresh, 5 s) from a small JSON URL. */
(function () {
  'use strict';
  var root = document.getElementById('projector');
  if (!root) { return; }
  var codeUrl = root.getAttribute('data-code-url');
  var countsUrl = root.getAttribute('data-counts-url');
  var refresh = parseInt(root.getAttribute('data-refresh'), 10) || 30;
  var countsRefresh = parseInt(root.getAttribute('data-counts-refresh'), 10) || 5;

  function getJson(url, callback) {
    var xhr = new XMLHttpRequest();
    xhr.open('GET', url, true);
    xhr.timeout = 8000;
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.onload = function () {
      if (xhr.status !== 200) { return; }
      try { callback(JSON.parse(xhr.responseText)); } catch (e) { /* next round */ }
    };
    xhr.send(null);
  }

  function showCounts(counts) {
    document.getElementById('projector-in').textContent = counts.checked_in;
    document.getElementById('projector-expected').textContent = counts.expected;
    // People admitted beyond capacity, beside the confirmed places ("+3 over capacity").
    var over = document.getElementById('projector-over');
    over.textContent = counts.over_capacity ? over.getAttribute('data-text').replace('{n}', counts.over_capacity) : '';
    over.hidden = !counts.over_capacity;
  }

  function loadCode() {
    getJson(codeUrl, function (data) {
      var img = document.getElementById('projector-qr');
      img.src = data.qr;
      img.setAttribute('data-url', data.url);
      showCounts(data.counts);
    });
  }

  function loadCounts() { getJson(countsUrl, showCounts); }

  loadCode();
  // Align with the server's 30-second slots so the code changes when the slot does.
  setTimeout(function () { loadCode(); setInterval(loadCode, refresh * 1000); }, (refresh - (Date.now() / 1000) % refresh) * 1000 + 300);
  setInterval(loadCounts, countsRefresh * 1000);
})();
