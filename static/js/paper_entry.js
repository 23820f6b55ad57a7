/* The paper sign-in sheet's entry page (templates/manage/paper_entry.html): find a line by
   its number on the sheet, name, village or the phone's last 4 digits, and tick it with Enter
   when only one is left; a live count of the ticked. Without this script the page is a plain
   checkbox list. */
(function () {
  'use strict';

  var tools = document.getElementById('paper-tools');
  var search = document.getElementById('paper-search');
  var form = document.getElementById('paper-form');
  if (!tools || !search || !form) { return; }
  var rows = Array.prototype.slice.call(form.querySelectorAll('tr.paper-row'));
  var visible = document.getElementById('paper-visible');
  var count = document.getElementById('paper-count');
  var countText = search.getAttribute('data-count-text') || '{n}';
  var visibleText = search.getAttribute('data-visible-text') || '{n} / {total}';

  function normalise(text) {
    // Full-width digits and letters (Chinese input methods) as half-width; case and spaces ignored.
    return (text || '').replace(/[\uFF01-\uFF5E]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xFEE0);
    }).replace(/\s+/g, '').toLowerCase();
  }

  function matches(row, query) {
    if (!query) { return true; }
    if (/^[0-9]+$/.test(query)) {  // a line's number, or the phone's last 4 digits
      return row.getAttribute('data-number') === query ||
        (query.length === 4 && row.getAttribute('data-tail') === query);
    }
    return normalise(row.getAttribute('data-search')).indexOf(query) !== -1;
  }

  function box(row) { return row.querySelector('input[type=checkbox]'); }

  function shown() {
    return rows.filter(function (row) { return !row.hidden; });
  }

  function updateCount() {
    var n = form.querySelectorAll('input[name=present]:checked').length;
    count.textContent = countText.replace('{n}', String(n));
  }

  function filter() {
    var query = normalise(search.value);
    rows.forEach(function (row) { row.hidden = !matches(row, query); });
    visible.textContent = query
      ? visibleText.replace('{n}', String(shown().length)).replace('{total}', String(rows.length))
      : '';
  }

  search.addEventListener('input', filter);
  search.addEventListener('keydown', function (event) {
    if (event.key !== 'Enter') { return; }
    event.preventDefault();
    var left = shown().filter(function (row) { return !box(row).disabled; });
    if (left.length !== 1) { return; }
    var checkbox = box(left[0]);
    checkbox.checked = !checkbox.checked;
    updateCount();
    search.select();  // the next name replaces this one
  });
  form.addEventListener('change', updateCount);
  tools.hidden = false;
  updateCount();
  search.focus();
})();
