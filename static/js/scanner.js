/* Door scanner: camera (jsQR), hardware scanner / typed code, search, walk-ins (also without
   a phone), undo and admission over capacity (organizers), organizers checking in anyway
   outside a session's check-in window, offline decisions from a downloaded roster, and an
   IndexedDB queue synced when online.
   The decisions themselves (what a code is, what an offline scan answers) are in
   scanner-core.js; this file wires them to the camera, the page and the network.
   Plain ES5 with XMLHttpRequest: runs in WeChat's built-in browser without a build step. */
(function () {
  'use strict';

  var root = document.getElementById('scanner');
  if (!root) { return; }
  var core = window.sciweekScannerCore;
  var cfg = JSON.parse(root.getAttribute('data-config'));
  var T = cfg.texts;
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    sessionId: null,
    roster: null,          // the server's roster JSON
    byHash: {},            // secret_sha256 -> registration
    byShort: {},           // short_code -> registration
    byCadre: {},           // cadre_id -> invited roster cadre holding no registration
    pending: 0,            // scans waiting in the queue
    online: navigator.onLine !== false,
    syncing: false,
    lastCode: '',
    lastCodeAt: 0,
    counts: null,          // last counts from the server
    recent: []             // [{nonce, title, cls}]
  };

  // ---- small helpers ------------------------------------------------------------

  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
  }

  // "name · 138****8000 · K7M2QX"; a walk-in without a phone shows T.no_phone instead.
  function personLabel(person) {
    return person.name + ' · ' + (person.village ? person.village + ' · ' : '') + (person.phone_masked || T.no_phone) + ' · ' + person.short_code;
  }

  function hhmm(iso) {
    if (!iso) { return ''; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ''; }
    return ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
  }

  function newNonce() {
    var bytes = new Uint8Array(16), out = '', i;
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); }
    }
    for (i = 0; i < 16; i++) { out += ('0' + bytes[i].toString(16)).slice(-2); }
    return 'd' + cfg.userId + '-' + out;
  }

  function request(method, url, body, callback) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.timeout = 5000;
    xhr.setRequestHeader('Accept', 'application/json');
    if (body !== null) {
      xhr.setRequestHeader('Content-Type', 'application/json');
      xhr.setRequestHeader('X-CSRFToken', cfg.csrfToken);
    }
    xhr.onload = function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      callback(xhr.status, data);
    };
    xhr.onerror = function () { callback(0, null); };
    xhr.ontimeout = function () { callback(0, null); };
    xhr.send(body === null ? null : JSON.stringify(body));
  }

  function sha256(text, callback) {
    var subtle = window.crypto && window.crypto.subtle;
    if (subtle && window.isSecureContext && window.TextEncoder) {
      subtle.digest('SHA-256', new TextEncoder().encode(text)).then(function (buf) {
        var bytes = new Uint8Array(buf), hex = '', i;
        for (i = 0; i < bytes.length; i++) { hex += ('0' + bytes[i].toString(16)).slice(-2); }
        callback(hex);
      }, function () { callback(window.sciweekSha256(text)); });
    } else {
      callback(window.sciweekSha256(text));
    }
  }

  // ---- storage: IndexedDB (queue + roster), memory when unavailable --------------------

  var memory = { queue: {}, roster: {} };
  var dbState = { db: undefined, waiting: [] };  // db: undefined = opening, null = unavailable

  function openDb(callback) {
    if (dbState.db !== undefined) { callback(dbState.db); return; }
    dbState.waiting.push(callback);
    if (dbState.waiting.length > 1) { return; }
    function done(db) {
      var waiting = dbState.waiting;
      dbState.db = db;
      dbState.waiting = [];
      for (var i = 0; i < waiting.length; i++) { waiting[i](db); }
    }
    var req = null;
    try { req = window.indexedDB ? window.indexedDB.open('sciweek-checkin', 1) : null; } catch (e) { req = null; }
    if (!req) { done(null); return; }
    req.onupgradeneeded = function () {
      var db = req.result;
      if (!db.objectStoreNames.contains('queue')) { db.createObjectStore('queue', { keyPath: 'nonce' }); }
      if (!db.objectStoreNames.contains('roster')) { db.createObjectStore('roster', { keyPath: 'activity_id' }); }
    };
    req.onsuccess = function () { done(req.result); };
    req.onerror = function () { done(null); };
  }

  function store(name, mode, work, callback) {
    openDb(function (db) {
      if (!db) { callback(work(null, memory[name])); return; }
      var tx = db.transaction(name, mode), result;
      result = work(tx.objectStore(name), null);
      tx.oncomplete = function () { callback(result && result.result !== undefined ? result.result : result); };
      tx.onerror = function () { callback(null); };
    });
  }

  function queuePut(item, callback) {
    store('queue', 'readwrite', function (s, mem) {
      if (mem) { mem[item.nonce] = item; return null; }
      return s.put(item);
    }, function () { callback && callback(); });
  }

  function queueDelete(nonce, callback) {
    store('queue', 'readwrite', function (s, mem) {
      if (mem) { delete mem[nonce]; return null; }
      return s['delete'](nonce);
    }, function () { callback && callback(); });
  }

  function queueAll(callback) {
    store('queue', 'readonly', function (s, mem) {
      if (mem) { return Object.keys(mem).map(function (k) { return mem[k]; }); }
      return s.getAll();
    }, function (items) {
      items = (items || []).filter(function (i) { return i.activity_id === cfg.activityId; });
      items.sort(function (a, b) { return a.created < b.created ? -1 : 1; });
      callback(items);
    });
  }

  function rosterSave(data) {
    store('roster', 'readwrite', function (s, mem) {
      var record = { activity_id: cfg.activityId, data: data };
      if (mem) { mem[cfg.activityId] = record; return null; }
      return s.put(record);
    }, function () {});
  }

  function rosterLoad(callback) {
    store('roster', 'readonly', function (s, mem) {
      if (mem) { return mem[cfg.activityId] || null; }
      return s.get(cfg.activityId);
    }, function (record) { callback(record ? record.data : null); });
  }

  // ---- roster ----------------------------------------------------------------------

  function useRoster(data) {
    if (!data) { return; }
    state.roster = data;
    state.byHash = {};
    state.byShort = {};
    state.byCadre = {};
    var cadres = data.cadres || [];
    for (var i = 0; i < data.registrations.length; i++) {
      var r = data.registrations[i];
      state.byHash[r.secret_sha256] = r;
      state.byShort[r.short_code] = r;
    }
    for (var c = 0; c < cadres.length; c++) { state.byCadre[cadres[c].cadre_id] = cadres[c]; }
    $('roster-status').textContent = fmt(T.roster_loaded, { n: data.registrations.length + cadres.length, time: hhmm(data.generated_at) });
    state.counts = null;
    renderCounts();
    renderSearch();
  }

  function fetchRoster() {
    request('GET', cfg.urls.roster, null, function (status, data) {
      if (status === 200 && data && data.registrations) {
        setOnline(true);
        // Keep our own not-yet-synced decisions on top of the server's view.
        queueAll(function (items) {
          for (var i = 0; i < items.length; i++) { markLocal(data, items[i]); }
          useRoster(data);
          rosterSave(data);
        });
      } else if (status === 0) {
        setOnline(false);
      }
    });
  }

  function markLocal(data, item) {
    if (!item.local || item.local.result !== 'ok') { return; }
    var cadreId = item.local.cadre_id, lists = [data.registrations, data.cadres || []];
    if (!item.local.registration_id && !cadreId) { return; }
    for (var l = 0; l < lists.length; l++) {
      for (var i = 0; i < lists[l].length; i++) {
        var r = lists[l][i];
        // A cadre let in offline may have a registration by now: it is the same person.
        var same = item.local.registration_id ? r.id === item.local.registration_id && l === 0 : r.cadre_id === cadreId;
        if (same && !r.checked_in[String(item.session_id)]) {
          r.checked_in[String(item.session_id)] = item.scanned_at;
        }
      }
    }
  }

  // ---- display -------------------------------------------------------------------

  var audio = null;
  function beep(kind) {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      var tones = kind === 'ok' ? [[880, 0, 0.12]] : kind === 'warn' ? [[660, 0, 0.1], [660, 0.16, 0.1]] : [[220, 0, 0.45]];
      for (var i = 0; i < tones.length; i++) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = tones[i][0];
        osc.type = kind === 'bad' ? 'square' : 'sine';
        gain.gain.value = 0.2;
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(audio.currentTime + tones[i][1]);
        osc.stop(audio.currentTime + tones[i][1] + tones[i][2]);
      }
    } catch (e) { /* sound is a bonus */ }
    if (navigator.vibrate) { navigator.vibrate(kind === 'ok' ? 80 : kind === 'warn' ? [60, 60, 60] : 400); }
  }

  function resultClass(result) {
    if (result === 'ok') { return 'ok'; }
    if (result === 'already_checked_in' || result === 'undone') { return 'warn'; }
    return 'bad';
  }

  function sessionById(id) {
    for (var i = 0; i < cfg.sessions.length; i++) {
      if (cfg.sessions[i].id === id) { return cfg.sessions[i]; }
    }
    return null;
  }

  // When the session starts or ended: the server's message, or (decided offline) the page's.
  function notNowText(answer) {
    if (answer.message) { return answer.message; }
    var session = sessionById(answer.session_id);
    var state = answer.window && answer.window.state;
    return (session && session.not_now && session.not_now[state]) || T.not_now;
  }

  function resultTitle(answer) {
    if (answer.result === 'not_now') { return notNowText(answer); }
    if (answer.result === 'already_checked_in') {
      return answer.checked_in_at ? fmt(T.already_at, { time: hhmm(answer.checked_in_at) }) : T.already_checked_in;
    }
    return T[answer.result] || T.invalid;
  }

  var undoTarget = null;
  var overrideRetry = null;  // sends the refused scan, walk-in or admission again, with a reason
  var admitTarget = null;

  function showOverride(retry) {
    var form = $('override-form');
    overrideRetry = cfg.canOverride && form ? retry || null : null;
    if (form) { form.hidden = !overrideRetry; }
  }

  // retry(reason): how to send this scan again as an organizer's override (not_now only).
  function showResult(answer, note, retry) {
    var cls = resultClass(answer.result);
    var box = $('result');
    box.className = 'result result-' + cls;
    box.setAttribute('data-result', answer.result);
    $('result-title').textContent = resultTitle(answer);
    var lines = [];
    if (answer.registration) { lines.push(personLabel(answer.registration)); }
    if (answer.result === 'wrong_activity' || answer.result === 'invalid') {
      if (answer.message && answer.message !== $('result-title').textContent) { lines.push(answer.message); }
    }
    if (note) { lines.push(note); }
    $('result-detail').textContent = lines.join('\n');
    undoTarget = cfg.canUndo && answer.result === 'ok' && answer.checkin_id ? answer.checkin_id : null;
    $('undo-button').hidden = !undoTarget;
    showOverride(answer.result === 'not_now' ? retry : null);
    // A waitlisted person at a full activity: an organizer may admit them over capacity.
    admitTarget = cfg.canAdmitOverCapacity && answer.result === 'waitlisted' && answer.registration ? answer.registration.id : null;
    $('admit-button').hidden = !admitTarget;
    beep(cls);
  }

  function showMessage(text) {
    var box = $('result');
    box.className = 'result result-bad';
    box.setAttribute('data-result', 'error');
    $('result-title').textContent = text;
    $('result-detail').textContent = '';
    $('undo-button').hidden = true;
    showOverride(null);
    $('admit-button').hidden = true;
    beep('bad');
  }

  function addRecent(nonce, answer, note) {
    var title = (answer.registration ? answer.registration.name + ' — ' : '') + resultTitle(answer) + (note ? ' (' + note + ')' : '');
    for (var i = 0; i < state.recent.length; i++) {
      if (state.recent[i].nonce === nonce) { state.recent[i].title = title; state.recent[i].cls = resultClass(answer.result); renderRecent(); return; }
    }
    state.recent.unshift({ nonce: nonce, title: title, cls: resultClass(answer.result) });
    state.recent = state.recent.slice(0, 20);
    renderRecent();
  }

  function renderRecent() {
    var list = $('recent');
    list.innerHTML = '';
    for (var i = 0; i < state.recent.length; i++) {
      var li = document.createElement('li');
      li.className = 'r-' + state.recent[i].cls;
      li.textContent = state.recent[i].title;
      list.appendChild(li);
    }
  }

  function renderCounts() {
    var checked = 0, expected = 0, over = 0;
    if (state.counts) {
      checked = state.counts.checked_in; expected = state.counts.expected;
      over = state.counts.over_capacity || 0;
    } else if (state.roster) {
      for (var i = 0; i < state.roster.registrations.length; i++) {
        var r = state.roster.registrations[i];
        // Confirmed places, and beside them those admitted over capacity (as the server counts).
        if (r.status === 'confirmed') { if (r.over_capacity) { over++; } else { expected++; } }
        if (r.checked_in[String(state.sessionId)]) { checked++; }
      }
    }
    $('count-in').textContent = checked;
    $('count-expected').textContent = expected;
    $('count-over').textContent = over ? fmt(T.over_count, { n: over }) : '';
    $('count-over').hidden = !over;
  }

  function setOnline(online) {
    state.online = online;
    renderNet();
  }

  function renderNet() {
    var el = $('net-status');
    if (!state.online || state.pending > 0) {
      el.textContent = fmt(T.offline_pending, { n: state.pending });
      el.className = 'net-status ' + (state.online ? 'pending' : 'offline');
    } else {
      el.textContent = T.online;
      el.className = 'net-status';
    }
  }

  function refreshPending() {
    queueAll(function (items) { state.pending = items.length; renderNet(); });
  }

  // ---- scanning ------------------------------------------------------------------

  // The roster entry a cadre check-in is for: the cadre, or the registration they hold
  // by now (the roster was refreshed since the search).
  function cadreEntry(cadreId) {
    if (state.byCadre[cadreId]) { return { kind: 'cadre', entry: state.byCadre[cadreId] }; }
    var regs = state.roster ? state.roster.registrations : [];
    for (var i = 0; i < regs.length; i++) {
      if (regs[i].cadre_id === cadreId) { return { kind: 'registration', entry: regs[i] }; }
    }
    return null;
  }

  function decideCadreLocally(item, callback) {
    var found = state.roster ? cadreEntry(item.cadre_id) : null, answer;
    if (found && found.kind === 'cadre') {
      answer = core.decideCadreOffline(state.roster, found.entry, item.session_id, item.scanned_at, item.override_reason);
    } else {
      answer = core.decideOffline(state.roster, found ? found.entry : null, item.session_id, item.scanned_at, item.override_reason);
    }
    if (found && answer.result === 'ok') { found.entry.checked_in[String(item.session_id)] = item.scanned_at; }
    item.local = {
      result: answer.result,
      registration_id: found && found.kind === 'registration' ? found.entry.id : null,
      cadre_id: item.cadre_id
    };
    if (state.roster) { rosterSave(state.roster); }
    callback(answer, found || !state.roster ? T.offline_decided : T.not_in_roster);
  }

  // Decide a scan from the roster when the server cannot be reached.
  function decideLocally(item, callback) {
    if (item.kind === 'cadre') { decideCadreLocally(item, callback); return; }
    var code = core.parseCode(item.code, cfg.baseUrls);
    function decide(r) {
      var answer = core.decideOffline(state.roster, r, item.session_id, item.scanned_at, item.override_reason);
      if (answer.result === 'ok') { r.checked_in[String(item.session_id)] = item.scanned_at; }
      item.local = { result: answer.result, registration_id: r ? r.id : null };
      if (state.roster) { rosterSave(state.roster); }
      callback(answer, r || !state.roster ? T.offline_decided : T.not_in_roster);
    }
    if (!code) { decide(null); return; }
    if (code.kind === 'short_code') { decide(state.byShort[code.value] || null); return; }
    sha256(code.value, function (hex) { decide(state.byHash[hex] || null); });
  }

  function applyAnswer(answer) {
    if (answer.counts) { state.counts = answer.counts; }
    var cadre = answer.cadre_id ? state.byCadre[answer.cadre_id] : null;
    if (cadre && (answer.result === 'ok' || answer.result === 'already_checked_in')) {
      cadre.checked_in[String(answer.session_id)] = answer.checked_in_at;
    }
    if (state.roster && answer.registration) {
      var r = state.byShort[answer.registration.short_code];
      if (r && r.id === answer.registration.id) {
        var sid = String(answer.session_id);
        if (answer.result === 'ok' || answer.result === 'already_checked_in') {
          r.checked_in[sid] = answer.checked_in_at;
          r.status = 'confirmed';  // (also after an admission over capacity)
        }
        if (answer.result === 'undone') { delete r.checked_in[sid]; }
        if (answer.result === 'cancelled' || answer.result === 'waitlisted') { r.status = answer.result; }
      }
    }
    renderCounts();
    renderSearch();
  }

  function payload(item) {
    var body = item.kind === 'cadre'
      ? { cadre_id: item.cadre_id, session_id: item.session_id, nonce: item.nonce }
      : { code: item.code, activity_id: item.activity_id, session_id: item.session_id, nonce: item.nonce };
    if (item.offline) { body.scanned_at = item.scanned_at; }
    if (item.override_reason) { body.override_reason = item.override_reason; }
    return body;
  }

  function retryScan(item) {
    if (item.kind === 'cadre') {
      return function (reason) { checkInCadre({ cadre_id: item.cadre_id }, reason); };
    }
    return function (reason) { scan(item.code, true, reason); };
  }

  function overrideNote(item, note) {
    if (!item.override_reason) { return note; }
    var text = fmt(T.override_note, { reason: item.override_reason });
    return note ? text + ' · ' + note : text;
  }

  // Send one queued scan. interactive: the person at the door is waiting for this answer.
  function send(item, interactive, done) {
    var url = item.kind === 'cadre' ? cfg.urls.rosterCheckin : cfg.urls.checkin;
    request('POST', url, payload(item), function (status, data) {
      if (status === 200 && data && data.result) {
        setOnline(true);
        queueDelete(item.nonce, refreshPending);
        applyAnswer(data);
        // "Another device was first" only when this device had let the person in itself.
        var otherDevice = data.conflict && item.local && item.local.result === 'ok';
        var note = otherDevice ? fmt(T.conflict, { time: hhmm(data.checked_in_at) }) : (item.offline ? T.synced : '');
        if (interactive) { showResult(data, '', retryScan(item)); }
        addRecent(item.nonce, data, overrideNote(item, note));
        done && done(true);
      } else if (status === 0 || status >= 500 || status === 401) {
        // Unreachable (or logged out): decide from the roster now, sync later.
        setOnline(status !== 0);
        if (interactive || !item.offline) {
          item.offline = true;
          decideLocally(item, function (answer, note) {
            queuePut(item, refreshPending);
            if (interactive) { showResult(answer, note, retryScan(item)); }
            addRecent(item.nonce, answer, overrideNote(item, note));
            renderCounts();
          });
        }
        done && done(false);
      } else {
        // The server refused the request itself (400/403/413): retrying cannot help.
        queueDelete(item.nonce, refreshPending);
        if (interactive) { showMessage((data && data.message) || T.error); }
        done && done(true);
      }
    });
  }

  // Check in an invited roster cadre who holds no registration (the server makes it).
  // overrideReason: an organizer checks in anyway after a not_now answer.
  function checkInCadre(cadre, overrideReason) {
    if (!state.sessionId) { showMessage(T.choose_session); return; }
    var item = {
      kind: 'cadre',
      nonce: newNonce(),
      code: 'cadre:' + cadre.cadre_id,
      cadre_id: cadre.cadre_id,
      activity_id: cfg.activityId,
      session_id: state.sessionId,
      scanned_at: new Date().toISOString(),
      created: Date.now(),
      offline: false
    };
    if (overrideReason) { item.override_reason = overrideReason; }
    queuePut(item, function () {
      refreshPending();
      send(item, true);
    });
  }

  // overrideReason: an organizer checks in anyway after a not_now answer (sent with the scan).
  function scan(text, force, overrideReason) {
    text = (text || '').replace(/^\s+|\s+$/g, '');
    if (!text) { return; }
    var now = Date.now();
    // The camera sees the same code many times a second.
    // A ticket held under the camera stays one scan: every sighting renews the quiet time.
    if (!force && text === state.lastCode && now - state.lastCodeAt < 3000) {
      state.lastCodeAt = now;
      return;
    }
    state.lastCode = text; state.lastCodeAt = now;
    if (!state.sessionId) { showMessage(T.choose_session); return; }
    var item = {
      nonce: newNonce(),
      code: text,
      activity_id: cfg.activityId,
      session_id: state.sessionId,
      scanned_at: new Date().toISOString(),
      created: now,
      offline: false
    };
    if (overrideReason) { item.override_reason = overrideReason; }
    queuePut(item, function () {
      refreshPending();
      send(item, true);
    });
  }

  function sync() {
    if (state.syncing) { return; }
    queueAll(function (items) {
      if (!items.length) { state.pending = 0; renderNet(); return; }
      state.syncing = true;
      var i = 0;
      (function next() {
        if (i >= items.length) { state.syncing = false; refreshPending(); fetchRoster(); return; }
        var item = items[i++];
        item.offline = true;
        send(item, false, function (ok) {
          if (ok) { next(); } else { state.syncing = false; refreshPending(); }
        });
      })();
    });
  }

  // ---- camera --------------------------------------------------------------------

  var camera = { stream: null, running: false };

  function startCamera() {
    var video = $('camera-video');
    var status = $('camera-status');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) {
      status.textContent = T.camera_failed;
      return;
    }
    status.textContent = T.camera_starting;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false }).then(function (stream) {
      camera.stream = stream;
      video.srcObject = stream;
      video.setAttribute('playsinline', 'true');
      var played = video.play();
      if (played && played['catch']) { played['catch'](function () {}); }
      status.textContent = '';
      $('camera-button').hidden = true;
      if (!camera.running) { camera.running = true; tick(); }
    }, function () {
      status.textContent = T.camera_failed;
    });
  }

  function tick() {
    var video = $('camera-video');
    if (video.readyState >= 2 && video.videoWidth) {
      var canvas = $('camera-canvas');
      var scale = Math.min(1, 640 / video.videoWidth);
      var w = Math.floor(video.videoWidth * scale), h = Math.floor(video.videoHeight * scale);
      canvas.width = w; canvas.height = h;
      var ctx = canvas.getContext('2d');
      ctx.drawImage(video, 0, 0, w, h);
      var found = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: 'dontInvert' });
      if (found && found.data) { scan(found.data, false); }
    }
    setTimeout(tick, 200);
  }

  // ---- search ------------------------------------------------------------------------

  function renderSearch() {
    var list = $('search-results');
    var q = $('search-input').value;
    list.innerHTML = '';
    if (!q.replace(/^\s+|\s+$/g, '') || !state.roster) { return; }
    // The same reading of a query as the server's (sciweek/person_query.py): phones by their
    // last four digits or whole (compared on what the mask shows), ID numbers by their last
    // four, else a part of a name; registrations first, then roster cadres holding none.
    var found = core.searchRoster(state.roster, q, 20);
    if (found.query.kind === 'digits') {
      var hint = document.createElement('li');
      hint.textContent = T.tail_hint;
      list.appendChild(hint);
      return;
    }
    if (!found.hits.length) {
      var none = document.createElement('li');
      none.textContent = T.no_match;
      list.appendChild(none);
    }
    for (var j = 0; j < found.hits.length; j++) {
      var hit = found.hits[j];
      list.appendChild(hit.kind === 'cadre' ? cadreRow(hit.entry) : searchRow(hit.entry));
    }
  }

  function cadreRow(c) {
    var li = document.createElement('li');
    li.setAttribute('data-cadre-id', c.cadre_id);
    var label = document.createElement('span');
    label.textContent = c.name + ' · ' + (c.village || '') + ' · ' + (c.phone_masked || T.no_phone) +
      (c.id_masked ? ' · ' + c.id_masked.slice(-4) : '') + ' · ' + T.roster_cadre;
    li.appendChild(label);
    var at = c.checked_in[String(state.sessionId)];
    if (at) {
      var done = document.createElement('span');
      done.className = 'done';
      done.textContent = fmt(T.already_at, { time: hhmm(at) });
      li.appendChild(done);
    } else {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'primary';
      button.textContent = T.check_in;
      button.onclick = function () { checkInCadre(c); };
      li.appendChild(button);
    }
    return li;
  }

  function searchRow(r) {
    var li = document.createElement('li');
    var label = document.createElement('span');
    label.textContent = personLabel(r);
    li.appendChild(label);
    var at = r.checked_in[String(state.sessionId)];
    if (at) {
      var done = document.createElement('span');
      done.className = 'done';
      done.textContent = fmt(T.already_at, { time: hhmm(at) });
      li.appendChild(done);
    } else if (!core.scanRefusal(core.rosterTicket(state.roster, r, state.sessionId))) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'primary';
      button.textContent = T.check_in;
      button.onclick = function () { scan(r.short_code, true); };
      li.appendChild(button);
    } else if (r.status === 'waitlisted' && cfg.canAdmitOverCapacity) {
      var admitButton = document.createElement('button');
      admitButton.type = 'button';
      admitButton.textContent = T.admit;
      admitButton.onclick = function () { admit(r.id); };
      li.appendChild(admitButton);
    } else {
      var status = document.createElement('span');
      status.textContent = T[r.status] || r.status;
      li.appendChild(status);
    }
    return li;
  }

  // ---- walk-ins and undo ----------------------------------------------------------------

  function walkIn(event) {
    event.preventDefault();
    var noPhone = !!($('walk-in-no-phone') && $('walk-in-no-phone').checked);
    var person = { name: $('walk-in-name').value, phone: noPhone ? '' : $('walk-in-phone').value };
    if (noPhone) {
      if (!$('walk-in-village').value) { showMessage(T.choose_village); return; }
      person.no_phone = true;
      person.village_id = parseInt($('walk-in-village').value, 10);
    }
    if ($('walk-in-over-capacity') && $('walk-in-over-capacity').checked) { person.over_capacity = true; }
    sendWalkIn(person, null);
  }

  function sendWalkIn(person, overrideReason) {
    if (!state.online) { showMessage(T.walk_in_offline); return; }
    var nonce = newNonce();
    var body = { session_id: state.sessionId, nonce: nonce };
    Object.keys(person).forEach(function (key) { body[key] = person[key]; });
    if (overrideReason) { body.override_reason = overrideReason; }
    request('POST', cfg.urls.walkIn, body, function (status, data) {
      if (status === 200 && data && data.result) {
        showResult(data, '', function (reason) { sendWalkIn(person, reason); });
        addRecent(nonce, data, overrideNote({ override_reason: overrideReason }, ''));
        applyAnswer(data);
        if (data.result !== 'not_now') { $('walk-in-name').value = ''; $('walk-in-phone').value = ''; }
        fetchRoster();
      } else if (status === 0) {
        setOnline(false);
        showMessage(T.walk_in_offline);
      } else {
        showMessage((data && data.message) || T.error);
      }
    });
  }

  // Check in anyway: send the refused scan (or walk-in) again with the organizer's reason.
  function override(event) {
    event.preventDefault();
    var input = $('override-reason');
    var reason = input.value.replace(/^\s+|\s+$/g, '');
    if (!reason || !overrideRetry) { input.focus(); return; }
    var retry = overrideRetry;
    showOverride(null);
    input.value = '';
    retry(reason);
  }

  // Walk-in without a phone: the village instead of the phone.
  function toggleNoPhone() {
    var noPhone = $('walk-in-no-phone').checked;
    $('walk-in-phone-field').hidden = noPhone;
    $('walk-in-phone').required = !noPhone;
    $('walk-in-village-field').hidden = !noPhone;
    $('walk-in-village').required = noPhone;
  }

  // Over capacity: an organizer admits a waitlisted person beyond capacity and checks them in.
  function admit(registrationId) {
    if (!registrationId || !window.confirm(T.admit_confirm)) { return; }
    sendAdmission(registrationId, null);
  }

  function sendAdmission(registrationId, overrideReason) {
    var nonce = newNonce();
    var body = { registration_id: registrationId, session_id: state.sessionId, nonce: nonce };
    if (overrideReason) { body.override_reason = overrideReason; }
    request('POST', cfg.urls.overCapacity, body, function (status, data) {
      if (status === 200 && data && data.result) {
        showResult(data, '', function (reason) { sendAdmission(registrationId, reason); });
        addRecent(nonce, data, overrideNote({ override_reason: overrideReason }, ''));
        applyAnswer(data);
        fetchRoster();
      } else {
        showMessage((data && data.message) || T.error);
      }
    });
  }

  function undo() {
    if (!undoTarget || !window.confirm(T.undo_confirm)) { return; }
    request('POST', cfg.urls.undo.replace('{id}', undoTarget), {}, function (status, data) {
      if (status === 200 && data) {
        showResult(data);
        applyAnswer(data);
        addRecent(newNonce(), data, '');
      } else {
        showMessage((data && data.message) || T.error);
      }
    });
  }

  // ---- session choice ------------------------------------------------------------------

  function defaultSession() {
    var sessions = cfg.sessions, now = Date.now(), i;
    if (cfg.sessionId) { return cfg.sessionId; }
    if (sessions.length === 1) { return sessions[0].id; }
    // The session whose check-in window is open, preferring one not yet ended (as the server).
    var open = sessions.filter(function (s) { return core.windowState(s, cfg.checkinWindow, now) === 'open'; });
    var running = open.filter(function (s) { return now <= Date.parse(s.ends_at); });
    if (running.length || open.length) { return (running[0] || open[0]).id; }
    for (i = 0; i < sessions.length; i++) {
      if (Date.parse(sessions[i].ends_at) > now) { return sessions[i].id; }
    }
    return sessions.length ? sessions[sessions.length - 1].id : null;
  }

  // ---- wiring ------------------------------------------------------------------------------

  var select = $('session-select');
  state.sessionId = defaultSession();
  if (state.sessionId) { select.value = String(state.sessionId); }
  select.onchange = function () {
    state.sessionId = parseInt(select.value, 10);
    state.counts = null;
    renderCounts();
    renderSearch();
  };

  $('code-form').onsubmit = function (event) {
    event.preventDefault();
    var input = $('code-input');
    scan(input.value, true);
    input.value = '';
    input.focus();
  };
  $('search-input').oninput = renderSearch;
  $('walk-in-form').onsubmit = walkIn;
  $('undo-button').onclick = undo;
  if ($('override-form')) { $('override-form').onsubmit = override; }
  $('admit-button').onclick = function () { admit(admitTarget); };
  if ($('walk-in-no-phone')) { $('walk-in-no-phone').onchange = toggleNoPhone; }
  $('camera-button').onclick = startCamera;

  window.addEventListener('online', function () { setOnline(true); sync(); });
  window.addEventListener('offline', function () { setOnline(false); });
  setInterval(function () { if (state.pending) { sync(); } }, 15000);
  setInterval(function () { if (!state.pending) { fetchRoster(); } }, 60000);

  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(cfg.urls.serviceWorker, { scope: cfg.urls.serviceWorker.replace(/[^/]*$/, '') }).then(function (reg) {
      var cachePage = function (worker) { worker.postMessage({ cache: [location.pathname + location.search] }); };
      if (reg.active) { cachePage(reg.active); }
      navigator.serviceWorker.ready.then(function (ready) { if (ready.active) { cachePage(ready.active); } });
    }, function () {});
  }

  // Exposed for the browser tests and for debugging at the door.
  window.sciweekScanner = { scan: scan, checkInCadre: checkInCadre, sync: sync, state: state };

  rosterLoad(function (data) {
    if (data && !state.roster) { useRoster(data); }
    fetchRoster();
    refreshPending();
    sync();
  });
  renderNet();
  startCamera();
  $('code-input').focus();
})();
