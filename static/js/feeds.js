/* Calendar subscribe links: the address selects itself when focused, and the copy button
   copies it. The button's texts (data-done, data-fail) are rendered through gettext. */
(function () {
  'use strict';

  function selectAll() { this.select(); }

  function copy() {
    var button = this;
    var input = button.parentNode.querySelector('.feed-url');
    function done(ok) { button.textContent = button.getAttribute(ok ? 'data-done' : 'data-fail'); }
    function fallback() {
      input.focus(); input.select();
      try { done(document.execCommand('copy')); } catch (e) { done(false); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, fallback);
    } else { fallback(); }
  }

  var inputs = document.querySelectorAll('.feed-url');
  var buttons = document.querySelectorAll('.copy-feed-url');
  var i;
  for (i = 0; i < inputs.length; i++) {
    if (inputs[i].getAttribute('data-ready')) { continue; }  // script included twice
    inputs[i].setAttribute('data-ready', '1');
    inputs[i].addEventListener('focus', selectAll);
  }
  for (i = 0; i < buttons.length; i++) {
    if (buttons[i].getAttribute('data-ready')) { continue; }
    buttons[i].setAttribute('data-ready', '1');
    buttons[i].addEventListener('click', copy);
  }
})();
