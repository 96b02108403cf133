// The bedside assessment form: shows conditional items, the running score and band as the nurse
// taps (for display only: the server scores), keeps the form as a draft on the device, and if the
// network drops on sending keeps it and sends it when the network returns. The idempotency key
// travels with the draft, so a resend never makes a second assessment.
(function () {
  var form = document.getElementById('assessment');
  if (!form) return;
  var d = form.dataset;
  var draftKey = 'rounds-draft:' + d.patient + ':' + d.code;
  var status = document.getElementById('assess-status');
  var items = Array.prototype.slice.call(form.querySelectorAll('fieldset.item'));
  var bands = Array.prototype.slice.call(form.querySelectorAll('ul.bands li'));

  function answers() {
    var out = {};
    items.forEach(function (f) {
      if (f.hidden) return;
      var checked = f.querySelector('input[type=radio]:checked');
      if (checked) out[f.dataset.item] = checked.value;
    });
    return out;
  }

  function chosen() { // every checked radio, shown or not (for conditions)
    var out = {};
    items.forEach(function (f) {
      var checked = f.querySelector('input[type=radio]:checked');
      if (checked) out[f.dataset.item] = checked.value;
    });
    return out;
  }

  function refresh() {
    var all = chosen();
    items.forEach(function (f) {
      var cond = (f.dataset.showIf || '').split(' ').filter(Boolean);
      var shown = !cond.length || cond.some(function (c) { var p = c.split('='); return all[p[0]] === p[1]; });
      f.hidden = !shown;
      f.querySelectorAll('input').forEach(function (i) { i.disabled = !shown; });
    });
    var total = 0, groups = {};
    items.forEach(function (f) {
      if (f.hidden) return;
      var checked = f.querySelector('input[type=radio]:checked');
      if (!checked) return;
      var points = parseInt(checked.dataset.points, 10) || 0;
      if (d.rule === 'max_of_group' && f.dataset.group) groups[f.dataset.group] = Math.max(groups[f.dataset.group] || 0, points);
      else total += points;
    });
    Object.keys(groups).forEach(function (g) { total += groups[g]; });
    var whenShown = d.ageWhenShown;
    var gate = !whenShown || items.some(function (f) { return f.dataset.item === whenShown && !f.hidden; });
    if (parseInt(d.age, 10) >= parseInt(d.ageMinimum, 10) && gate) total += parseInt(d.agePoints, 10) || 0;
    // Blank until the first answer: "0 · 低风险" before anything is chosen would be a claim.
    var answered = Object.keys(all).length > 0;
    document.getElementById('running-total').textContent = answered ? total : '';
    var band = answered && bands.filter(function (b) { return total >= +b.dataset.min && total <= +b.dataset.max; })[0];
    var label = document.getElementById('running-band');
    label.textContent = band ? band.textContent : '';
    label.className = 'score' + (band ? ' sev-' + band.dataset.severity : '');
  }

  function draft() {
    return { answers: chosen(), reason: form.reason.value, key: form.idempotencyKey.value, pending: false };
  }

  function save(pending) {
    var value = draft();
    value.pending = !!pending;
    try { localStorage.setItem(draftKey, JSON.stringify(value)); } catch (e) { /* private mode: no draft */ }
  }

  function restore() {
    var saved;
    try { saved = JSON.parse(localStorage.getItem(draftKey) || 'null'); } catch (e) { saved = null; }
    if (!saved) return null;
    form.idempotencyKey.value = saved.key;
    if (saved.reason) form.reason.value = saved.reason;
    Object.keys(saved.answers || {}).forEach(function (item) {
      var input = form.querySelector('input[name="a_' + item + '"][value="' + saved.answers[item] + '"]');
      if (input) input.checked = true;
    });
    return saved;
  }

  var sending = false;
  function send() {
    if (sending) return;
    sending = true;
    var body = { instrument: d.code, answers: answers(), idempotencyKey: form.idempotencyKey.value, reason: form.reason.value };
    rounds.fetch('/api/v1/patients/' + d.patient + '/assessments', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (json) { return { ok: r.ok, json: json }; });
    }).then(function (result) {
      sending = false;
      if (result.ok) {
        localStorage.removeItem(draftKey);
        status.textContent = d.sent;
        location.href = '/patients/' + d.patient + '/nursing?done=' + result.json.id;
      } else {
        save(false);
        var m = /^answers\.([\w-]+):/.exec(result.json.detail || '');
        var fieldset = m && form.querySelector('fieldset.item[data-item="' + m[1] + '"]');
        if (fieldset) return flag(fieldset);
        status.textContent = result.json.message + (result.json.detail ? '：' + result.json.detail : '');
        status.className = 'flash error';
      }
    }, function () {
      // No network: keep it, send when it returns.
      sending = false;
      save(true);
      status.textContent = d.savedOffline;
      status.className = 'flash ok';
    });
  }

  form.addEventListener('change', function () { refresh(); save(false); });
  // A required question left open: say which, highlight it and take her there; nothing is sent.
  function firstMissing() {
    return items.filter(function (f) {
      return !f.hidden && f.dataset.required && !f.querySelector('input[type=radio]:checked');
    })[0];
  }
  function flag(fieldset) {
    items.forEach(function (f) { f.classList.remove('missing'); });
    fieldset.classList.add('missing');
    status.textContent = d.missing.replace('%s', fieldset.querySelector('legend').textContent.replace('*', '').trim());
    status.className = 'flash error';
    fieldset.scrollIntoView({ block: 'center' });
  }
  form.addEventListener('change', function (e) {
    var f = e.target.closest && e.target.closest('fieldset.item');
    if (f) f.classList.remove('missing');
  });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var missing = firstMissing();
    if (missing) return flag(missing);
    save(true); send();
  });
  window.addEventListener('online', function () {
    var saved = restore();
    if (saved && saved.pending) send();
  });
  setInterval(function () {
    var saved;
    try { saved = JSON.parse(localStorage.getItem(draftKey) || 'null'); } catch (e) { saved = null; }
    if (saved && saved.pending && navigator.onLine !== false) send();
  }, 15000);

  var saved = restore();
  refresh();
  if (saved && saved.pending) send();
})();
