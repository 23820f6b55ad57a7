/* Projector: fetch a fresh signed self check-in code every 30 s and show it as a QR code. */
(function () {
  'use strict';
  var root = document.getElementById('projector');
  if (!root) { return; }
  var url = root.getAttribute('data-code-url');
  var refresh = parseInt(root.getAttribute('data-refresh'), 10) || 30;

  function load() {
    var xhr = new XMLHttpRequest();
    xhr.open('GET', url, true);
    xhr.timeout = 8000;
    xhr.onload = function () {
      if (xhr.status !== 200) { return; }
      var data = JSON.parse(xhr.responseText);
      var img = document.getElementById('projector-qr');
      img.src = data.qr;
      img.setAttribute('data-url', data.url);
      document.getElementById('projector-in').textContent = data.counts.checked_in;
      document.getElementById('projector-expected').textContent = data.counts.expected;
    };
    xhr.send(null);
  }

  load();
  // Align with the server's 30-second slots so the code changes when the slot does.
  setTimeout(function () { load(); setInterval(load, refresh * 1000); }, (refresh - (Date.now() / 1000) % refresh) * 1000 + 300);
})();
