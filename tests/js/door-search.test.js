// The door search of static/js/scanner-core.js (offline, on the roster's masked values)
// against the shared table of cases (tests/door_search_cases.json), which pytest runs
// against the server's search (full values, in SQL). Run: node --test tests/js/
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const core = require(path.join(__dirname, '..', '..', 'static', 'js', 'scanner-core.js'));
const table = require(path.join(__dirname, '..', 'door_search_cases.json'));

// The offline roster as GET /api/v1/activities/<id>/roster sends it: masked values only.
function roster() {
  const registrations = [];
  const cadres = [];
  table.people.forEach((person, n) => {
    const entry = {
      id: n + 1, name: person.name, phone_masked: person.phone_masked,
      id_masked: person.kind === 'registration' ? '' : person.id_masked,
      key: person.key, checked_in: {}
    };
    (person.kind === 'cadre' ? cadres : registrations).push(entry);
  });
  return { activity: { id: 12, status: 'published' }, registrations, cadres };
}

for (const item of table.queries) {
  test(`door search ${JSON.stringify(item.query)} finds ${item.found.join(', ') || 'nobody'}`, () => {
    const found = core.searchRoster(roster(), item.query, 50).hits.map((hit) => hit.entry.key);
    assert.deepEqual(found.sort(), item.found);
  });
}

test('cadres are found in the cadre list, registrations first', () => {
  const hits = core.searchRoster(roster(), '张', 50).hits;
  assert.deepEqual(hits.map((h) => [h.kind, h.entry.key]), [['registration', 'zhangsf'], ['cadre', 'zhang']]);
});

test('a search stops at its limit', () => {
  assert.equal(core.searchRoster(roster(), '张', 1).hits.length, 1);
});

test('offline, a cadre is let in unless already in or the training is cancelled', () => {
  const r = roster();
  const cadre = Object.assign({ cadre_id: 7 }, r.cadres[0]);
  const first = core.decideCadreOffline(r, cadre, 34, '2026-05-17T02:00:00.000Z');
  assert.equal(first.result, 'ok');
  assert.equal(first.checked_in_at, '2026-05-17T02:00:00.000Z');
  assert.equal(first.cadre_id, 7);
  cadre.checked_in['34'] = '2026-05-17T01:00:00.000Z';
  const again = core.decideCadreOffline(r, cadre, 34, '2026-05-17T02:00:00.000Z');
  assert.equal(again.result, 'already_checked_in');
  assert.equal(again.checked_in_at, '2026-05-17T01:00:00.000Z');
  r.activity.status = 'cancelled';
  assert.equal(core.decideCadreOffline(r, cadre, 35, 'x').result, 'cancelled');
});

test('offline, a cadre follows the session window like a ticket (organizers may override)', () => {
  const r = roster();
  r.sessions = [{ id: 34, starts_at: '2026-05-17T02:00:00.000Z', ends_at: '2026-05-17T04:00:00.000Z' }];
  r.checkin_window = { opens_before_minutes: 60, closes_after_minutes: 30 };
  const cadre = Object.assign({ cadre_id: 7 }, r.cadres[0]);
  const early = core.decideCadreOffline(r, cadre, 34, '2026-05-16T23:00:00.000Z');
  assert.equal(early.result, 'not_now');
  assert.equal(early.window.state, 'before');
  assert.equal(early.checked_in_at, null);
  assert.equal(core.decideCadreOffline(r, cadre, 34, '2026-05-17T05:00:00.000Z').result, 'not_now');
  const anyway = core.decideCadreOffline(r, cadre, 34, '2026-05-16T23:00:00.000Z', 'came early');
  assert.equal(anyway.result, 'ok');
  assert.equal(core.decideCadreOffline(r, cadre, 34, '2026-05-17T01:30:00.000Z').result, 'ok');
});
