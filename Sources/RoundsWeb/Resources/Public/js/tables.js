// The grid: tap a cell to edit it in place (saved through the API with the version it was read
// at; a cell someone else changed meanwhile is refused with its current value), and CSV import.
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
        if (!res.ok) {
          if (before !== undefined) cell.textContent = before;
          var prefix = res.status === 409 ? messages.getAttribute('data-conflict') + ' ' : '';
          showError(prefix + problemText(res.body));
          return;
        }
        // The page shows each cell's words as the server writes them (names, units): reload the row's view.
        window.location.reload();
      })
      .catch(function () { if (before !== undefined) cell.textContent = before; });
  }

  grid.addEventListener('click', function (e) {
    var cell = e.target.closest('td.editable');
    if (cell) edit(cell);
  });
  grid.addEventListener('keydown', function (e) {
    var cell = e.target.closest && e.target.closest('td.editable');
    if (cell && e.target === cell && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); edit(cell); }
  });

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
