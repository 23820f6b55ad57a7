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

  // A ticket URL's secret when text is one under base (same host and path prefix; http or
  // https, as checkin/codes.py reads it), else null.
  function secretFromUrl(text, base) {
    var ours = /^[a-z]+:\/\/([^\/?#]+)(\/[^?#]*)?$/i.exec(base.replace(/\/+$/, ''));
    var read = /^(https?):\/\/([^\/?#]+)(\/[^?#]*)?$/i.exec(text);
    if (!ours || !read || read[2].toLowerCase() !== ours[1].toLowerCase()) { return null; }
    var prefix = (ours[2] || '') + '/t/';
    var path = read[3] || '';
    if (path.slice(0, prefix.length) !== prefix) { return null; }
    var m = /^([A-Za-z0-9_-]{32})\/?$/.exec(path.slice(prefix.length));
    return m ? m[1] : null;
  }

  // What a scanned text is: {kind: 'secret' | 'short_code', value}, or null when it is no
  // ticket code of this site (a ticket URL under baseUrls -- one address or a list of the
  // site's addresses, links.site_base_urls -- a bare secret, or a short code).
  function parseCode(text, baseUrls) {
    text = trim(text);
    if (text.indexOf('://') >= 0) {
      var bases = typeof baseUrls === 'string' ? [baseUrls] : baseUrls;
      for (var i = 0; i < bases.length; i++) {
        var secret = secretFromUrl(text, bases[i]);
        if (secret) { return { kind: 'secret', value: secret }; }
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

  // An invited roster cadre holding no registration (the roster's "cadres"), decided
  // offline: a check-in makes their registration on the server, so it is refused only
  // when the training is cancelled or they were checked in here already, and answered
  // not_now outside the session's window unless an organizer overrides (as a ticket is).
  // The server's answer, when the scan is synced, is the last word (a full training
  // waitlists them).
  function decideCadreOffline(roster, cadre, sessionId, scannedAt, override) {
    var ticket = {
      registration_status: 'confirmed',
      activity_status: roster.activity.status,
      same_activity: true,
      checked_in: !!cadre.checked_in[String(sessionId)]
    };
    var session = rosterSession(roster, sessionId);
    var scan = {
      window: session ? windowState(session, roster.checkin_window, scannedAt) : 'open',
      override: !!override
    };
    var answer = {
      result: scanResult(ticket, scan),
      registration: { id: null, name: cadre.name, phone_masked: cadre.phone_masked, short_code: '' },
      checked_in_at: null,
      session_id: sessionId,
      cadre_id: cadre.cadre_id
    };
    if (answer.result === 'not_now') { answer.window = { state: scan.window }; }
    if (answer.result === 'already_checked_in') {
      answer.checked_in_at = cadre.checked_in[String(sessionId)];
    } else if (answer.result === 'ok') {
      answer.checked_in_at = scannedAt;
    }
    return answer;
  }

  // ---- door search (sciweek/person_query.py; cases: tests/door_search_cases.json) ----

  function halfWidth(text) {
    return text.replace(/[\uff01-\uff5e]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xfee0);
    }).replace(/\u3000/g, ' ');
  }

  // identity.normalize_phone: 11 digits, or null.
  function normalizePhone(text) {
    var value = halfWidth(text).replace(/[\s\-\u2014\u2013()\uff08\uff09.\u00b7]/g, '');
    if (value.slice(0, 3) === '+86') { value = value.slice(3); }
    else if (value.slice(0, 4) === '0086') { value = value.slice(4); }
    else if (value.slice(0, 2) === '86' && value.length === 13) { value = value.slice(2); }
    return /^1[3-9][0-9]{9}$/.test(value) ? value : null;
  }

  // What a door search asks for: {kind: 'empty' | 'tail' | 'phone' | 'digits' | 'name', value}.
  function parseQuery(text) {
    var value = trim(halfWidth(text || '')).slice(0, 50);
    if (!value) { return { kind: 'empty', value: '' }; }
    var compact = value.replace(/[\s\-\u2014\u2013()\uff08\uff09.\u00b7+]/g, '').toUpperCase();
    if (/^[0-9]{3}[0-9X]$/.test(compact)) { return { kind: 'tail', value: compact }; }
    var phone = normalizePhone(value);
    if (phone) { return { kind: 'phone', value: phone }; }
    if (/^[0-9X]+$/.test(compact)) { return { kind: 'digits', value: compact }; }
    return { kind: 'name', value: value };
  }

  // Does a roster entry (a registration or a cadre, masked values only) answer the query?
  // A phone is compared on what its mask shows: the first 3 and the last 4 digits.
  function matchesQuery(query, entry) {
    var phone = entry.phone_masked || '', id = entry.id_masked || '';
    if (query.kind === 'name') { return (entry.name || '').indexOf(query.value) >= 0; }
    if (query.kind === 'tail') {
      var byPhone = /^[0-9]{4}$/.test(query.value) && phone.length === 11 && phone.slice(-4) === query.value;
      return byPhone || (id.length > 0 && id.slice(-4) === query.value);
    }
    if (query.kind === 'phone') {
      return phone.length === 11 && phone.slice(0, 3) === query.value.slice(0, 3) &&
        phone.slice(-4) === query.value.slice(-4);
    }
    return false;
  }

  // The door search over a downloaded roster: registrations first, then invited cadres
  // holding none; at most ``limit`` entries, each {kind: 'registration' | 'cadre', entry}.
  function searchRoster(roster, text, limit) {
    var query = parseQuery(text), hits = [], i;
    var lists = [['registration', roster ? roster.registrations || [] : []],
                 ['cadre', roster ? roster.cadres || [] : []]];
    if (query.kind === 'empty' || query.kind === 'digits') { return { query: query, hits: hits }; }
    for (var l = 0; l < lists.length; l++) {
      for (i = 0; i < lists[l][1].length && hits.length < limit; i++) {
        if (matchesQuery(query, lists[l][1][i])) { hits.push({ kind: lists[l][0], entry: lists[l][1][i] }); }
      }
    }
    return { query: query, hits: hits };
  }

  return {
    decideCadreOffline: decideCadreOffline,
    parseQuery: parseQuery,
    matchesQuery: matchesQuery,
    searchRoster: searchRoster,
    parseCode: parseCode,
    scanRefusal: scanRefusal,
    scanResult: scanResult,
    windowState: windowState,
    rosterTicket: rosterTicket,
    decideOffline: decideOffline
  };
}));
