/* Self check-in: remember the phone number on this device so the next session is one tap. */
(function () {
  'use strict';
  var KEY = 'sciweek-self-checkin-phone';
  var form = document.getElementById('self-form');
  if (!form) { return; }
  var input = form.querySelector('input[name=phone]');
  try {
    if (input && !input.value && window.localStorage.getItem(KEY)) { input.value = window.localStorage.getItem(KEY); }
  } catch (e) { /* private mode: nothing remembered */ }
  form.addEventListener('submit', function () {
    try { window.localStorage.setItem(KEY, input.value.replace(/\s+/g, '')); } catch (e) { /* ignore */ }
  });
})();
