// Urgent critical-value alerts on every page: a red popup with a sound, repeated every 10 s until
// someone acknowledges. Open alerts of my groups show on page load; new ones arrive over the
// WebSocket; an alert acknowledged anywhere (its card turns green) closes the popup everywhere.
(function () {
  var me = document.body.dataset.me;
  if (!me || !window.WebSocket) return;
  var shown = {}, ringing = null;

  function isAlertCard(card) {
    return card && card.severity === 'critical' && (card.buttons || []).some(function (b) { return b.action === 'acknowledge_alert'; });
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); setTimeout(function () { osc.stop(); ctx.close(); }, 400);
    } catch (e) { /* no audio on this device */ }
  }

  function ring() {
    beep();
    if (!ringing) ringing = setInterval(function () { if (Object.keys(shown).length) beep(); }, 10000);
  }

  function area() {
    var box = document.getElementById('urgent-alerts');
    if (!box) {
      box = document.createElement('div');
      box.id = 'urgent-alerts';
      box.setAttribute('role', 'alertdialog');
      box.setAttribute('aria-live', 'assertive');
      document.body.appendChild(box);
    }
    return box;
  }

  function show(messageId, groupId, title, lines) {
    if (shown[messageId]) return;
    var box = document.createElement('div');
    box.className = 'urgent-alert';
    box.dataset.message = messageId;
    var h = document.createElement('strong'); h.textContent = title; box.appendChild(h);
    lines.forEach(function (line) { var p = document.createElement('p'); p.textContent = line; box.appendChild(p); });
    var ack = document.createElement('button');
    ack.type = 'button'; ack.className = 'urgent-ack'; ack.textContent = document.body.dataset.ackLabel || 'Acknowledge';
    ack.addEventListener('click', function () {
      ack.disabled = true;
      rounds.fetch('/api/v1/messages/' + messageId + '/actions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'acknowledge_alert' })
      }).then(function (r) { if (r.ok) close(messageId); else ack.disabled = false; });
    });
    box.appendChild(ack);
    if (groupId) {
      var open = document.createElement('a'); open.href = '/groups/' + groupId; open.textContent = document.body.dataset.openLabel || 'Open';
      box.appendChild(open);
    }
    area().appendChild(box);
    shown[messageId] = box;
    ring();
  }

  function close(messageId) {
    var box = shown[messageId];
    if (box) { box.remove(); delete shown[messageId]; }
    if (!Object.keys(shown).length && ringing) { clearInterval(ringing); ringing = null; }
  }

  function fromCard(message, groupId) {
    var lines = (message.card.fields || []).map(function (f) { return f.label + '：' + f.value; });
    show(message.id, groupId, message.card.title, lines);
  }

  // Alerts already open in my groups.
  Promise.all([rounds.fetch('/api/v1/groups').then(function (r) { return r.ok ? r.json() : []; }),
               rounds.fetch('/api/v1/alerts?status=open').then(function (r) { return r.ok ? r.json() : []; })])
    .then(function (results) {
      var mine = {};
      results[0].forEach(function (g) { mine[g.id] = true; });
      results[1].forEach(function (a) {
        if (a.cardMessageId && mine[a.groupId]) {
          show(a.cardMessageId, a.groupId, a.testName + ' ' + a.value + ' ' + (a.unit || ''), [a.raisedAt]);
        }
      });
    });

  function connect() {
    var socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
    socket.onmessage = function (e) {
      var event = JSON.parse(e.data), message = event.message;
      if (!message || !message.card) return;
      if (event.type === 'message' && isAlertCard(message.card)) fromCard(message, event.groupId);
      if (event.type === 'update' && !isAlertCard(message.card)) close(message.id);
    };
    socket.onclose = function () { setTimeout(connect, 2000); };
  }
  connect();
})();
