/* Coverage chart: each bar's length and target marker come from data-coverage and
   data-target (percent). The Content-Security-Policy refuses style="" attributes, not
   styles set from a script. The print button prints the page. */
(function () {
  'use strict';

  function percent(value) {
    var n = parseFloat(value);
    return (isNaN(n) ? 0 : Math.max(0, Math.min(100, n))) + '%';
  }

  var fills = document.querySelectorAll('.bar-fill[data-coverage]');
  var targets = document.querySelectorAll('.bar-target[data-target]');
  var printers = document.querySelectorAll('button[data-print]');
  var i;
  for (i = 0; i < fills.length; i++) { fills[i].style.width = percent(fills[i].getAttribute('data-coverage')); }
  for (i = 0; i < targets.length; i++) { targets[i].style.left = percent(targets[i].getAttribute('data-target')); }
  for (i = 0; i < printers.length; i++) {
    printers[i].addEventListener('click', function () { window.print(); });
  }
})();
