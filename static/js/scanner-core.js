/* The door scanner's decisions, without the DOM: what a scanned text is, and what a scan
   answers when the server cannot be asked (offline, from the downloaded roster).

   The server decides with Registration.scan_refusal and scan_outcome (sciweek/models/);
   this is their copy for the browser. tests/scan_cases.json lists the cases that both must
   answer alike: pytest runs them on the server, node --test (tests/js/) runs them here.
   Plain ES5, no build step: a browser script (window.sciweekScannerCore, used by
   scanner.js) and a CommonJS module for node. */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.sciweekScannerCore = factory();
  }
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var SECRET = /^[A-Za-z0-9_-]{32}$/;
  var SHORT_CODE = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;

  // Typed short codes: full-width forms (ＰＺＴ９ＣＺ) as ASCII, and no spaces or dashes
  // (-, en and em dashes, minus signs). The server's copy: registration/tickets.py
  // (normalize_short_code).
  var SEPARATORS = /[\s\-\u2010-\u2015\u2212]/g;

  function halfWidth(text) {
    return text.replace(/[\uff01-\uff5e]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xfee0);
    }).replace(/\u3000/g, ' ');
  }

  function trim(text) {
    return (text || '').replace(/^\s+|\s+$/g, '');
  }

  // What a scanned text is: {kind: 'secret' | 'short_code', value}, or null when it is no
  // ticket code of this site (a ticket URL of baseUrl, a bare secret, or a short code).
  function parseCode(text, baseUrl) {
    text = trim(text);
    if (text.indexOf('://') >= 0) {
      var base = baseUrl.replace(/\/+$/, '') + '/t/';
      if (text.slice(0, base.length).toLowerCase() === base.toLowerCase()) {
        var m = /^([A-Za-z0-9_-]{32})\/?$/.exec(text.slice(base.length));
        if (m) { return { kind: 'secret', value: m[1] }; }
      }
      return null;
    }
    if (SECRET.test(text)) { return { kind: 'secret', value: text }; }
    var short = halfWidth(text).toUpperCase().replace(SEPARATORS, '');
    if (SHORT_CODE.test(short)) { return { kind: 'short_code', value: short }; }
    return null;
  }

  // A ticket, as the decision reads it: {registration_status, activity_status,
  // same_activity, checked_in (a live check-in at this session)}; null: no ticket.

  // What the registrant sees: a cancelled activity cancels every registration.
  function effectiveStatus(ticket) {
    return ticket.activity_status === 'cancelled' ? 'cancelled' : ticket.registration_status;
  }

  // Why this ticket may not be checked in here, or null (Registration.scan_refusal).
  function scanRefusal(ticket) {
    if (!ticket.same_activity) { return 'wrong_activity'; }
    var status = effectiveStatus(ticket);
    if (status === 'cancelled') { return 'cancelled'; }
    if (status === 'waitlisted') { return 'waitlisted'; }
    return null;
  }

  // The answer to a scan (scan_outcome).
  function scanResult(ticket) {
    if (!ticket) { return 'invalid'; }
    return scanRefusal(ticket) || (ticket.checked_in ? 'already_checked_in' : 'ok');
  }

  // A roster entry (GET /api/v1/activities/<id>/roster) as a ticket; null for none.
  function rosterTicket(roster, entry, sessionId) {
    if (!entry) { return null; }
    return {
      registration_status: entry.status,
      activity_status: roster.activity.status,
      same_activity: true,  // the roster holds this activity's tickets only
      checked_in: !!entry.checked_in[String(sessionId)]
    };
  }

  // The offline answer to a scan of a roster entry (null: not in the roster) at a session,
  // shaped like the server's answer. Changes nothing: the caller notes an 'ok'.
  function decideOffline(roster, entry, sessionId, scannedAt) {
    var answer = {
      result: scanResult(rosterTicket(roster, entry, sessionId)),
      registration: null,
      checked_in_at: null,
      session_id: sessionId
    };
    if (entry) {
      answer.registration = {
        id: entry.id, name: entry.name, phone_masked: entry.phone_masked, short_code: entry.short_code
      };
      if (answer.result === 'already_checked_in') {
        answer.checked_in_at = entry.checked_in[String(sessionId)];
      } else if (answer.result === 'ok') {
        answer.checked_in_at = scannedAt;
      }
    }
    return answer;
  }

  return {
    parseCode: parseCode,
    scanRefusal: scanRefusal,
    scanResult: scanResult,
    rosterTicket: rosterTicket,
    decideOffline: decideOffline
  };
}));
