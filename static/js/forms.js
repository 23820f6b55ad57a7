/* Forms marked in the templates: data-confirm="<question>" asks before sending (a dangerous
   action; the question is rendered through gettext), and data-once sends a form only once,
   so a second tap while the answer is slow to come does not send it again. */
(function () {
  'use strict';

  function watch(form) {
    if (form.getAttribute('data-forms-ready')) { return; }  // script included twice
    form.setAttribute('data-forms-ready', '1');
    form.addEventListener('submit', function (event) {
      var once = form.hasAttribute('data-once');
      var question = form.getAttribute('data-confirm');
      if (once && form.getAttribute('data-sent')) { event.preventDefault(); return; }
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
      if (once) {
        form.setAttribute('data-sent', '1');
        var button = form.querySelector('button[type=submit]');
        // After this submit has started: a disabled button would not be part of it.
        if (button) { setTimeout(function () { button.disabled = true; }, 0); }
      }
    });
  }

  var forms = document.querySelectorAll('form[data-confirm], form[data-once]');
  for (var i = 0; i < forms.length; i++) { watch(forms[i]); }
})();
