// Rounds group view: live messages, cards, read receipts and typing over /api/v1/ws.
// After a reconnect it catches up with ?after=<last id>, so nothing is missed or shown twice.
(function () {
  var root = document.getElementById('chat');
  if (!root) return;
  var groupId = root.dataset.group, me = root.dataset.me;
  var lastId = root.dataset.last || '';
  var list = document.getElementById('messages');
  var typingLine = document.getElementById('typing');
  var socket = null, typingTimer = null, lastTypingSent = 0;

  // Same form as the server's: 2026-11-22 09:30 (local time of the device).
  function formatTime(iso) {
    var d = new Date(iso), pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function render(m, replace) {
    var existing = document.getElementById('m-' + m.id);
    if (existing && !replace) return;  // already shown
    var li = el('li', 'msg ' + m.kind + (m.senderId === me ? ' mine' : ''));
    li.id = 'm-' + m.id;
    li.dataset.id = m.id;
    if (m.card) {
      var card = el('div', 'bot-card sev-' + m.card.severity);
      card.appendChild(el('strong', 'card-title', m.card.title));
      var dl = el('dl');
      (m.card.fields || []).forEach(function (f) { dl.appendChild(el('dt', null, f.label)); dl.appendChild(el('dd', null, f.value)); });
      card.appendChild(dl);
      var p = el('p');
      (m.card.buttons || []).forEach(function (b) {
        if (b.url) { var a = el('a', 'button', b.label); a.href = b.url; p.appendChild(a); return; }
        var button = el('button', 'card-action', b.label); button.type = 'button'; button.dataset.action = b.action;
        p.appendChild(button);
      });
      card.appendChild(p);
      li.appendChild(card);
    } else if (m.attachmentId && !m.recalled) {
      li.appendChild(el('span', 'sender', m.senderName));
      li.appendChild(document.createTextNode(' '));
      var link = el('a', 'file'); link.href = '/attachments/' + m.attachmentId; link.target = '_blank';
      if (/\.pdf$/i.test(m.text)) { link.textContent = '📄 ' + m.text; } else {
        var img = el('img', 'thumb'); img.src = link.href; img.alt = m.text; link.appendChild(img);
      }
      li.appendChild(link);
    } else if (m.recalled) {
      li.appendChild(el('span', 'recalled muted', m.senderName + ' ' + root.dataset.recalledLabel));
    } else {
      li.appendChild(el('span', 'sender', m.senderName));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('span', 'text', m.text));
      if (m.editedAt) li.appendChild(el('span', 'edited muted', ' ' + root.dataset.editedLabel));
      if ((m.mentions || []).indexOf(me) >= 0) li.classList.add('mentions-me');
    }
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('span', 'time muted', formatTime(m.createdAt)));
    if (m.senderId === me) {
      var r = el('span', 'receipts muted', root.dataset.readLabel + ' 0');
      r.title = '';
      li.appendChild(r);
    }
    if (existing) { list.replaceChild(li, existing); return; }
    list.appendChild(li);
    if (m.id > lastId) lastId = m.id;
    li.scrollIntoView({ block: 'end' });
    if (m.senderId !== me) markRead(m.id);
  }

  function markRead(id) {
    if (document.hidden || !document.getElementById('composer')) return;
    rounds.fetch('/api/v1/groups/' + groupId + '/read', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ upTo: id })
    });
  }

  function receipt(r) {
    var li = document.getElementById('m-' + r.messageId);
    if (!li || !li.classList.contains('mine')) return;
    var span = li.querySelector('.receipts');
    var names = span.title ? span.title.split('、') : [];
    if (names.indexOf(r.name) >= 0) return;
    names.push(r.name);
    span.title = names.join('、');
    span.textContent = root.dataset.readLabel + ' ' + names.length;
    span.dataset.readers = span.title;
  }

  function showTyping(name) {
    typingLine.textContent = name + ' ' + root.dataset.typingLabel;
    typingLine.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingLine.hidden = true; }, 3000);
  }

  function catchUp() {
    return rounds.fetch('/api/v1/groups/' + groupId + '/messages?after=' + encodeURIComponent(lastId))
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (messages) { messages.forEach(render); });
  }

  function connect() {
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    socket = new WebSocket(scheme + location.host + '/api/v1/ws');
    socket.onopen = function () { root.classList.add('live'); catchUp(); };
    socket.onmessage = function (e) {
      var event = JSON.parse(e.data);
      if (event.groupId !== groupId) return;
      if (event.type === 'message') render(event.message);
      else if (event.type === 'receipt') receipt(event.receipt);
      else if (event.type === 'update') render(event.message, true);
      else if (event.type === 'typing') showTyping(event.name);
    };
    socket.onclose = function () { root.classList.remove('live'); setTimeout(connect, 1000); };
  }

  // Card action buttons (e.g. "acknowledge"): recorded in Rounds, then the bot is called back.
  list.addEventListener('click', function (e) {
    var button = e.target.closest('button.card-action');
    if (!button) return;
    var id = button.closest('li.msg').dataset.id;
    button.disabled = true;
    rounds.fetch('/api/v1/messages/' + id + '/actions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: button.dataset.action })
    }).then(function (r) { if (r.ok) button.classList.add('done'); else button.disabled = false; });
  });

  var form = document.getElementById('composer');
  if (form) {
    var text = document.getElementById('composer-text');
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var body = text.value.trim();
      if (!body) return;
      rounds.fetch('/api/v1/groups/' + groupId + '/messages', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: body })
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (res.ok) { text.value = ''; render(res.body); } else { alert(res.body.message + (res.body.detail ? ': ' + res.body.detail : '')); }
        });
    });
    var file = document.getElementById('composer-file');
    if (file) file.addEventListener('change', function () {
      var f = file.files[0];
      if (!f) return;
      rounds.fetch('/api/v1/groups/' + groupId + '/attachments', {
        method: 'POST', headers: { 'Content-Type': f.type || 'application/octet-stream', 'X-Filename': encodeURIComponent(f.name) }, body: f
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          file.value = '';
          if (res.ok) render(res.body); else alert(res.body.message + (res.body.detail ? ': ' + res.body.detail : ''));
        });
    });
    text.addEventListener('input', function () {
      var now = Date.now();
      if (socket && socket.readyState === 1 && now - lastTypingSent > 2000) {
        lastTypingSent = now;
        socket.send(JSON.stringify({ type: 'typing', groupId: groupId }));
      }
    });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden && lastId) markRead(lastId); });
  // Opening the page (a GET) marks nothing read; the open, visible page says so explicitly,
  // once the page's scripts have all loaded.
  window.addEventListener('load', function () { if (lastId) markRead(lastId); });
  connect();
})();
