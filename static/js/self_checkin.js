/* Self check-in: remember the phone number on this device so the next session is one tap
   (the ticket holder's form and the roster cadre's two forms share it). */
(function () {
  'use strict';
  var KEY = 'sciweek-self-checkin-phone';
  function remember(form) {
    if (!form) { return; }
    var input = form.querySelector('input[type=tel]');
    if (!input) { return; }
    try {
      if (!input.value && window.localStorage.getItem(KEY)) { input.value = window.localStorage.getItem(KEY); }
    } catch (e) { /* private mode: nothing remembered */ }
    form.addEventListener('submit', function () {
      try { window.localStorage.setItem(KEY, input.value.replace(/\s+/g, '')); } catch (e) { /* ignore */ }
    });
  }
  remember(document.getElementById('self-form'));
  remember(document.getElementById('cadre-self-form'));
  remember(document.getElementById('cadre-sms-form'));
})();
