// static/js/scanner-core.js against the shared table of cases (tests/scan_cases.json), which
// pytest runs against the server's general and fast paths. Run: node --test tests/js/
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const core = require(path.join(__dirname, '..', '..', 'static', 'js', 'scanner-core.js'));
const table = require(path.join(__dirname, '..', 'scan_cases.json'));

const SESSION = 34;
const OTHER_SESSION = 35;
const HOUR = 3600 * 1000;

// The scan as a case describes it: its place against the session's window, and whether an
// organizer checks the person in anyway.
function scanOf(item) {
  return { window: item.window || 'open', override: !!item.override };
}

for (const item of table.scans) {
  test(`scan: ${item.case} -> ${item.result}`, () => {
    assert.equal(core.scanResult(item.ticket, scanOf(item)), item.result);
  });
}

for (const item of table.windows) {
  test(`window: ${item.at} (${item.opens_before_minutes}/${item.closes_after_minutes}) -> ${item.state}`, () => {
    const settings = {
      opens_before_minutes: item.opens_before_minutes,
      closes_after_minutes: item.closes_after_minutes
    };
    assert.equal(core.windowState(item, settings, item.at), item.state);
    assert.equal(core.windowState(item, settings, Date.parse(item.at)), item.state);
  });
}

// A session of the roster placed so that scannedAt falls where the case says (the roster's
// window: 60 min before the start to 30 min after the end).
function sessionAround(scannedAt, window) {
  const at = Date.parse(scannedAt);
  const starts = { open: at - HOUR, before: at + 2 * HOUR, after: at - 4 * HOUR }[window];
  return {
    id: SESSION,
    starts_at: new Date(starts).toISOString(),
    ends_at: new Date(starts + 2 * HOUR).toISOString()
  };
}

// The offline scanner sees a ticket through the roster, which holds this activity's tickets
// only (a ticket of another activity is not in it: 'invalid' offline, as documented).
function rosterFor(ticket, session) {
  const checkedIn = {};
  if (ticket.checked_in) { checkedIn[String(SESSION)] = '2026-05-17T01:02:03+00:00'; }
  if ((ticket.history || []).includes('other_session')) {
    checkedIn[String(OTHER_SESSION)] = '2026-05-16T01:02:03+00:00';
  }
  const entry = {
    id: 5, name: '张三', phone_masked: '138****8000', short_code: 'K7M2QX',
    // The roster sends the effective status: a cancelled activity cancels every ticket.
    status: ticket.activity_status === 'cancelled' ? 'cancelled' : ticket.registration_status,
    checked_in: checkedIn
  };
  return {
    roster: {
      activity: { id: 12, status: ticket.activity_status },
      sessions: [session],
      checkin_window: { opens_before_minutes: 60, closes_after_minutes: 30 },
      registrations: [entry]
    },
    entry
  };
}

for (const item of table.scans.filter((c) => c.ticket === null || c.ticket.same_activity)) {
  test(`offline: ${item.case} -> ${item.result}`, () => {
    const scannedAt = '2026-05-17T02:00:00.000Z';
    const session = sessionAround(scannedAt, item.window || 'open');
    const { roster, entry } = item.ticket
      ? rosterFor(item.ticket, session)
      : { roster: null, entry: null };
    const answer = core.decideOffline(roster, entry, SESSION, scannedAt, !!item.override);
    assert.equal(answer.result, item.result);
    assert.equal(answer.session_id, SESSION);
    if (item.result === 'not_now') {
      assert.deepEqual(answer.window, { state: item.window });
    }
    if (entry === null) {
      assert.equal(answer.registration, null);
      return;
    }
    assert.deepEqual(answer.registration, {
      id: 5, name: '张三', phone_masked: '138****8000', short_code: 'K7M2QX'
    });
    const expectedTime = {
      ok: scannedAt,
      already_checked_in: entry.checked_in[String(SESSION)]
    }[item.result] || null;
    assert.equal(answer.checked_in_at, expectedTime);
    // Deciding changes nothing: the page notes an 'ok' itself.
    assert.deepEqual(Object.keys(entry.checked_in).includes(String(SESSION)), item.ticket.checked_in);
  });
}

for (const item of table.codes) {
  test(`code: ${JSON.stringify(item.text)}`, () => {
    assert.deepEqual(core.parseCode(item.text, table.base_urls), item.code);
  });
}

test('offline: a queued scan is judged at its scan time, not when it is decided', () => {
  const ticket = {
    registration_status: 'confirmed', activity_status: 'published', same_activity: true, checked_in: false
  };
  const session = { id: SESSION, starts_at: '2026-12-06T01:30:00Z', ends_at: '2026-12-06T03:00:00Z' };
  const { roster, entry } = rosterFor(ticket, session);
  assert.equal(core.decideOffline(roster, entry, SESSION, '2026-12-06T03:29:00Z').result, 'ok');
  assert.equal(core.decideOffline(roster, entry, SESSION, '2026-12-06T03:31:00Z').result, 'not_now');
  assert.equal(core.decideOffline(roster, entry, SESSION, '2026-12-06T00:29:00Z').result, 'not_now');
  // The roster's own settings, not the defaults.
  roster.checkin_window = { opens_before_minutes: 0, closes_after_minutes: 0 };
  assert.equal(core.decideOffline(roster, entry, SESSION, '2026-12-06T01:00:00Z').result, 'not_now');
  // A roster saved before it carried the settings: the server's defaults.
  delete roster.checkin_window;
  assert.equal(core.decideOffline(roster, entry, SESSION, '2026-12-06T01:00:00Z').result, 'ok');
});
