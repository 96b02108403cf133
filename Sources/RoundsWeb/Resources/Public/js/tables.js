// The grid: tap a cell to edit it in place (saved through the API with the version it was read
// at; a cell someone else changed meanwhile is refused with its current value), other people's
// edits shown live (over /api/v1/ws, as this reader may see them), and CSV import.
(function () {
  // A record's comment box: tap a name to @mention them.
  Array.prototype.forEach.call(document.querySelectorAll('.mention-pick'), function (b) {
    b.addEventListener('click', function () {
      var box = document.getElementById('comment-text');
      box.value = (box.value && !/\s$/.test(box.value) ? box.value + ' ' : box.value) + '@' + b.getAttribute('data-name') + ' ';
      box.focus();
    });
  });
})();
(function () {
  var grid = document.getElementById('grid');
  if (!grid) return;
  var api = grid.getAttribute('data-api');
  var errorBox = document.getElementById('grid-error');
  var messages = document.getElementById('grid-messages');

  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }

  function problemText(body) {
    if (body && body.errors && body.errors.length) {
      return body.errors.map(function (e) { return e.reason + (e.current != null ? ' ' + e.current : ''); }).join('；');
    }
    return (body && (body.message + (body.detail ? '：' + body.detail : ''))) || '';
  }

  function edit(cell) {
    if (cell.querySelector('input,select,textarea')) return;
    var row = cell.parentNode, kind = cell.getAttribute('data-kind'), raw = cell.getAttribute('data-raw') || '';
    var input;
    if (kind === 'checkbox') {
      save(cell, row, raw !== 'true');
      return;
    }
    input = document.createElement(kind === 'long_text' ? 'textarea' : 'input');
    input.value = raw;
    if (kind === 'number' || kind === 'currency' || kind === 'percent' || kind === 'rating' || kind === 'progress') { input.type = 'number'; input.step = 'any'; }
    if (kind === 'date') input.type = 'date';
    var before = cell.textContent;
    cell.textContent = '';
    cell.appendChild(input);
    input.focus();
    var done = false;
    function finish(commit) {
      if (done) return;
      done = true;
      if (!commit || input.value === raw) { cell.textContent = before; return; }
      var value = input.value === '' ? null : (input.type === 'number' ? Number(input.value) : input.value);
      // What was typed stays in view while it is saved; the server's words for it follow.
      cell.textContent = input.value;
      cell.classList.add('saving');
      save(cell, row, value, before);
    }
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && kind !== 'long_text') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', function () { finish(true); });
  }

  function save(cell, row, value, before) {
    var fields = {};
    fields[cell.getAttribute('data-field')] = value;
    var body = { records: [{ id: row.getAttribute('data-record'), version: Number(row.getAttribute('data-version')), fields: fields }] };
    rounds.fetch(api + '/records', { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; }); })
      .then(function (res) {
        cell.classList.remove('saving');
        if (!res.ok) {
          if (before !== undefined) cell.textContent = before;
          var prefix = res.status === 409 ? messages.getAttribute('data-conflict') + ' ' : '';
          showError(prefix + problemText(res.body));
          return;
        }
        // The cell's words (names, units) come back over the socket as the server writes them;
        // without it, reload the page.
        var saved = res.body.records && res.body.records[0];
        if (saved) row.setAttribute('data-version', Math.max(Number(row.getAttribute('data-version')), saved.version));
        if (!live || live.readyState !== 1) window.location.reload();
      })
      .catch(function () { cell.classList.remove('saving'); if (before !== undefined) cell.textContent = before; });
  }

  grid.addEventListener('click', function (e) {
    var cell = e.target.closest('td.editable');
    if (cell) edit(cell);
  });
  grid.addEventListener('keydown', function (e) {
    var cell = e.target.closest && e.target.closest('td.editable');
    if (cell && e.target === cell && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); edit(cell); }
  });

  // Live: apply each pushed record to its row; a row being edited keeps the version it was read
  // at, so a clash with the same cell is still a 409, never a silent overwrite.
  var live = null, liveNote = document.getElementById('grid-live'), newCount = 0;
  function note(text) { liveNote.textContent = text; liveNote.hidden = false; }
  function applyRecord(rec, by) {
    var row = grid.querySelector('tr[data-record="' + rec.id + '"]');
    if (!row) return;
    if (rec.deleted) { row.parentNode.removeChild(row); return; }
    var editing = !!row.querySelector('input,select,textarea');
    if (!editing) row.setAttribute('data-version', rec.version);
    Array.prototype.forEach.call(row.querySelectorAll('td[data-field]'), function (cell) {
      var c = rec.cells[cell.getAttribute('data-field')];
      if (!c || cell.querySelector('input,select,textarea')) return;
      if (cell.textContent !== c.text || cell.getAttribute('data-raw') !== c.raw) {
        cell.textContent = c.text;
        cell.setAttribute('data-raw', c.raw);
        cell.classList.add('live-changed');
        if (by) cell.title = liveNote.getAttribute('data-by').replace('%s', by);
        setTimeout(function () { cell.classList.remove('live-changed'); }, 3000);
      }
    });
  }
  function connect() {
    if (!window.WebSocket || grid.getAttribute('data-live') !== 'true') return;
    live = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
    live.onmessage = function (e) {
      var event;
      try { event = JSON.parse(e.data); } catch (x) { return; }
      // The server is ready for frames once it says hello.
      if (event.type === 'hello') {
        var ids = Array.prototype.map.call(grid.querySelectorAll('tr[data-record]'), function (r) { return r.getAttribute('data-record'); });
        live.send(JSON.stringify({ type: 'watch', tableId: grid.getAttribute('data-table'), records: ids }));
        return;
      }
      if (event.tableId !== grid.getAttribute('data-table')) return;
      if (event.type === 'closed') { note(liveNote.getAttribute('data-closed')); live.onclose = null; live.close(); return; }
      if (event.type === 'added') { newCount += event.added; note(liveNote.getAttribute('data-new').replace('%d', newCount)); return; }
      if (event.type !== 'records') return;
      (event.records || []).forEach(function (rec) { applyRecord(rec, (event.by || []).join('、')); });
      (event.hidden || []).forEach(function (id) {
        var row = grid.querySelector('tr[data-record="' + id + '"]');
        if (row) row.parentNode.removeChild(row);
      });
      grid.setAttribute('data-live-events', String(Number(grid.getAttribute('data-live-events') || 0) + 1));
    };
    // Reconnect after a dropped network; a reload catches up on what was missed.
    live.onclose = function () { setTimeout(connect, 3000); };
  }
  connect();

  var form = document.getElementById('import-form');
  if (form) form.addEventListener('submit', function (e) {
    e.preventDefault();
    var file = document.getElementById('import-file').files[0];
    if (!file) return;
    var mode = document.getElementById('import-mode').value;
    file.text().then(function (text) {
      return rounds.fetch(api + '/import?mode=' + mode, { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: text });
    }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        var report = document.getElementById('import-report');
        if (!res.ok) { showError(problemText(res.body)); return; }
        var rep = res.body;
        var rows = report.getAttribute('data-rows').replace('%d', rep.rows).replace('%d', rep.imported);
        document.getElementById('import-summary').textContent = rows;
        var list = document.getElementById('import-refused');
        list.textContent = '';
        rep.refused.forEach(function (x) {
          var li = document.createElement('li');
          li.textContent = report.getAttribute('data-line').replace('%d', x.line) + ' · ' + x.field + '：' + x.reason;
          list.appendChild(li);
        });
        report.hidden = false;
      });
  });
})();
