/* The door scanner's decisions, without the DOM: what a scanned text is, and what a scan
   answers when the server cannot be asked (offline, from the downloaded roster).

   The server decides with Registration.scan_refusal and scan_outcome (sciweek/models/) and
   the sessions' check-in windows (sciweek/checkin/windows.py); this is their copy for the
   browser. tests/scan_cases.json lists the cases that both must
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
  var MINUTE = 60 * 1000;
  // The server's defaults (SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES / _CLOSES_AFTER_MINUTES), for
  // a roster saved before the roster carried its settings.
  var DEFAULT_WINDOW = { opens_before_minutes: 60, closes_after_minutes: 30 };
  var SHORT_CODE = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;

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
    var short = text.toUpperCase().replace(/[\s-]/g, '');
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

  // Where a time falls against a session's check-in window (checkin/windows.py): 'before',
  // 'open' (both ends included) or 'after'. session: {starts_at, ends_at} (ISO 8601);
  // settings: {opens_before_minutes, closes_after_minutes} (the roster's checkin_window);
  // at: ISO 8601 text or milliseconds.
  function windowState(session, settings, at) {
    settings = settings || DEFAULT_WINDOW;
    var time = typeof at === 'number' ? at : Date.parse(at);
    if (time < Date.parse(session.starts_at) - settings.opens_before_minutes * MINUTE) {
      return 'before';
    }
    if (time > Date.parse(session.ends_at) + settings.closes_after_minutes * MINUTE) {
      return 'after';
    }
    return 'open';
  }

  // The answer to a scan (scan_outcome). scan: {window: 'before' | 'open' | 'after',
  // override: an organizer checks the person in anyway}; omitted: an open window.
  function scanResult(ticket, scan) {
    if (!ticket) { return 'invalid'; }
    var refusal = scanRefusal(ticket);
    if (refusal) { return refusal; }
    if (ticket.checked_in) { return 'already_checked_in'; }
    var closed = scan && scan.window && scan.window !== 'open' && !scan.override;
    return closed ? 'not_now' : 'ok';
  }

  // A session of the roster, by id; null when the roster does not hold it.
  function rosterSession(roster, sessionId) {
    var sessions = (roster && roster.sessions) || [];
    for (var i = 0; i < sessions.length; i++) {
      if (sessions[i].id === sessionId) { return sessions[i]; }
    }
    return null;
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
  // shaped like the server's answer. The session's check-in window is judged at scannedAt,
  // as the server judges the synced scan; override: an organizer checks in anyway. Changes
  // nothing: the caller notes an 'ok'.
  function decideOffline(roster, entry, sessionId, scannedAt, override) {
    var session = entry ? rosterSession(roster, sessionId) : null;
    var scan = {
      // A session the roster does not know is left to the server.
      window: session ? windowState(session, roster.checkin_window, scannedAt) : 'open',
      override: !!override
    };
    var answer = {
      result: scanResult(rosterTicket(roster, entry, sessionId), scan),
      registration: null,
      checked_in_at: null,
      session_id: sessionId
    };
    if (answer.result === 'not_now') { answer.window = { state: scan.window }; }
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
    windowState: windowState,
    rosterTicket: rosterTicket,
    decideOffline: decideOffline
  };
}));
