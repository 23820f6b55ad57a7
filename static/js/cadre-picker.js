/* The unmatched-attendees page: each row's search form asks the JSON endpoint
   (training.cadre_search) as one types, and lists the cadres found as buttons, each a copy
   of the link form in <template id="link-form-template">. Without JavaScript the same form
   reloads the page with the results for its row. */
(function () {
  'use strict';

  var template = document.getElementById('link-form-template');
  var forms = document.querySelectorAll('form.cadre-search');
  if (!template || !window.fetch) { return; }

  function linkForm(registrationId, cadre, buttonText) {
    var form = template.content.firstElementChild.cloneNode(true);
    form.querySelector('input[name="registration_id"]').value = registrationId;
    form.querySelector('input[name="cadre_id"]').value = cadre.id;
    form.querySelector('button').textContent = buttonText.replace('%s', cadre.label);
    return form;
  }

  function show(cell, data) {
    var results = cell.querySelector('.picker-results');
    var registrationId = cell.getAttribute('data-registration');
    var buttonText = cell.getAttribute('data-button') || '%s';
    results.textContent = '';
    if (data.hint) {
      var hint = document.createElement('p');
      hint.className = 'hint';
      hint.textContent = data.hint;
      results.appendChild(hint);
    }
    var list = document.createElement('ul');
    list.className = 'choices';
    data.cadres.forEach(function (cadre) {
      var item = document.createElement('li');
      item.appendChild(linkForm(registrationId, cadre, buttonText));
      list.appendChild(item);
    });
    results.appendChild(list);
  }

  Array.prototype.forEach.call(forms, function (form) {
    var cell = form.closest('.picker');
    var input = form.querySelector('input[name="q"]');
    var timer = null;
    var asked = 0;

    function search() {
      var params = new URLSearchParams(new FormData(form));
      var mine = ++asked;
      fetch(form.getAttribute('data-search-url') + '?' + params.toString(), {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin'
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && mine === asked) { show(cell, data); }  // only the latest answer
        })
        .catch(function () { /* the search button still works without us */ });
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      search();
    });
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
  });
})();
