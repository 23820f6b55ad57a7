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

for (const item of table.scans) {
  test(`scan: ${item.case} -> ${item.result}`, () => {
    assert.equal(core.scanResult(item.ticket), item.result);
  });
}

// The offline scanner sees a ticket through the roster, which holds this activity's tickets
// only (a ticket of another activity is not in it: 'invalid' offline, as documented).
function rosterFor(ticket) {
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
    roster: { activity: { id: 12, status: ticket.activity_status }, registrations: [entry] },
    entry
  };
}

for (const item of table.scans.filter((c) => c.ticket === null || c.ticket.same_activity)) {
  test(`offline: ${item.case} -> ${item.result}`, () => {
    const scannedAt = '2026-05-17T02:00:00.000Z';
    const { roster, entry } = item.ticket ? rosterFor(item.ticket) : { roster: null, entry: null };
    const answer = core.decideOffline(roster, entry, SESSION, scannedAt);
    assert.equal(answer.result, item.result);
    assert.equal(answer.session_id, SESSION);
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
    assert.deepEqual(core.parseCode(item.text, table.base_url), item.code);
  });
}
