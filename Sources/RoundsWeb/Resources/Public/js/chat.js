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
  var members = (root.dataset.members || '').split('|').filter(Boolean);
  var replyTo = document.getElementById('composer-reply-to');

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

  function lastMessage() {
    var all = list.querySelectorAll('li.msg');
    return all.length ? all[all.length - 1] : null;
  }

  // Reply for any text message; edit (15 min) and recall (2 min) for my own, as the server allows.
  function actions(m) {
    var box = el('span', 'msg-actions');
    var add = function (cls, label) { var b = el('button', 'link ' + cls, label); b.type = 'button'; box.appendChild(b); };
    add('msg-reply', root.dataset.replyLabel);
    if (m.senderId === me) {
      var age = Date.now() - new Date(m.createdAt).getTime();
      if (age < 15 * 60 * 1000) add('msg-edit', root.dataset.editLabel);
      if (age < 2 * 60 * 1000) add('msg-recall', root.dataset.recallLabel);
    }
    return box;
  }

  function render(m, replace) {
    var existing = document.getElementById('m-' + m.id);
    if (existing && !replace) return;  // already shown
    var li = el('li', 'msg ' + m.kind + (m.senderId === me ? ' mine' : ''));
    li.id = 'm-' + m.id;
    li.dataset.id = m.id;
    li.dataset.sender = m.senderName;
    li.dataset.day = formatTime(m.createdAt);
    li.dataset.at = m.createdAt;
    if (!existing) {
      // A new day gets its separator; the same sender within five minutes is not named again.
      var before = lastMessage(), day = li.dataset.day.slice(0, 10);
      if (!before || (before.dataset.day || '').slice(0, 10) !== day) {
        var sep = el('li', 'day-sep'); sep.appendChild(el('span', null, day)); list.appendChild(sep);
      } else if (before.dataset.sender === m.senderName && m.kind === 'text' && before.classList.contains('text') &&
                 before.dataset.at && new Date(m.createdAt) - new Date(before.dataset.at) < 5 * 60 * 1000) {
        li.classList.add('cont');
      }
    } else if (existing.classList.contains('cont')) {
      li.classList.add('cont');
    }
    if (m.card) {
      var card = el('div', 'bot-card sev-' + m.card.severity);
      var title = el('strong', 'card-title');
      var icon = el('span', 'card-icon'); icon.setAttribute('aria-hidden', 'true');
      title.appendChild(icon); title.appendChild(document.createTextNode(m.card.title));
      card.appendChild(title);
      var dl = el('dl');
      (m.card.fields || []).forEach(function (f) { dl.appendChild(el('dt', null, f.label)); dl.appendChild(el('dd', f.verbatim ? 'verbatim' : null, f.value)); });
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
      if (m.replyToId) {
        var quoted = document.getElementById('m-' + m.replyToId);
        if (quoted) li.appendChild(el('blockquote', 'quote muted', quoted.dataset.sender + ': ' +
          ((quoted.querySelector('.text') || {}).textContent || '').slice(0, 60)));
      }
      li.appendChild(el('span', 'sender', m.senderName));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('span', 'text', m.text));
      if (m.editedAt) li.appendChild(el('span', 'edited muted', ' ' + root.dataset.editedLabel));
      if ((m.mentions || []).indexOf(me) >= 0) li.classList.add('mentions-me');
      if (document.getElementById('composer')) li.appendChild(actions(m));
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

  function api(method, path, body) {
    return rounds.fetch(path, { method: method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }
  function complain(res) { alert(res.body.message + (res.body.detail ? ': ' + res.body.detail : '')); }

  // Reply, edit in place, recall.
  list.addEventListener('click', function (e) {
    var li = e.target.closest('li.msg');
    if (!li) return;
    var id = li.dataset.id;
    if (e.target.closest('.msg-reply')) {
      replyTo.value = id;
      var bar = document.getElementById('composer-replying');
      bar.querySelector('span').textContent = root.dataset.replyingLabel + ' ' + li.dataset.sender + '：' +
        ((li.querySelector('.text') || {}).textContent || '').slice(0, 40);
      bar.hidden = false;
      document.getElementById('composer-text').focus();
    } else if (e.target.closest('.msg-edit')) {
      var span = li.querySelector('.text');
      if (!span || li.querySelector('.edit-box')) return;
      var box = el('span', 'edit-box'), area = el('textarea'), save = el('button', 'primary', root.dataset.saveLabel),
          cancel = el('button', null, root.dataset.cancelLabel);
      area.value = span.textContent; area.rows = 2; save.type = cancel.type = 'button';
      box.appendChild(area); box.appendChild(save); box.appendChild(cancel);
      span.hidden = true; span.after(box); area.focus();
      cancel.addEventListener('click', function () { box.remove(); span.hidden = false; });
      save.addEventListener('click', function () {
        api('PATCH', '/api/v1/messages/' + id, { text: area.value }).then(function (res) {
          if (res.ok) render(res.body, true); else complain(res);
        });
      });
    } else if (e.target.closest('.msg-recall')) {
      if (!confirm(root.dataset.recallConfirm)) return;
      api('DELETE', '/api/v1/messages/' + id).then(function (res) { if (res.ok) render(res.body, true); else complain(res); });
    }
  });

  // Card action buttons of bots: recorded in Rounds, then the bot is called back.
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
      var payload = { text: body };
      if (replyTo.value) payload.replyTo = replyTo.value;
      api('POST', '/api/v1/groups/' + groupId + '/messages', payload).then(function (res) {
        if (!res.ok) return complain(res);
        text.value = ''; replyTo.value = ''; document.getElementById('composer-replying').hidden = true;
        render(res.body);
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
    document.getElementById('composer-reply-cancel').addEventListener('click', function () {
      replyTo.value = ''; document.getElementById('composer-replying').hidden = true;
    });

    // @ picker: typing "@" offers the group's members; picking one writes "@name ".
    var picker = document.getElementById('mention-picker');
    function token() {
      var before = text.value.slice(0, text.selectionStart), match = /@([^\s@]*)$/.exec(before);
      return match ? { start: before.length - match[0].length, prefix: match[1] } : null;
    }
    function offer() {
      var t = token();
      picker.innerHTML = '';
      var names = t ? members.filter(function (n) { return n.indexOf(t.prefix) >= 0; }).slice(0, 8) : [];
      names.forEach(function (name) {
        var item = el('li'), b = el('button', null, '@' + name); b.type = 'button';
        b.addEventListener('click', function () {
          var at = token() || t, after = text.value.slice(text.selectionStart);
          text.value = text.value.slice(0, at.start) + '@' + name + ' ' + after;
          var caret = at.start + name.length + 2;
          text.setSelectionRange(caret, caret); text.focus(); picker.hidden = true;
        });
        item.appendChild(b); picker.appendChild(item);
      });
      picker.hidden = names.length === 0;
    }
    text.addEventListener('input', offer);
    text.addEventListener('input', function () {
      var now = Date.now();
      if (socket && socket.readyState === 1 && now - lastTypingSent > 2000) {
        lastTypingSent = now;
        socket.send(JSON.stringify({ type: 'typing', groupId: groupId }));
      }
    });
  }
  // Open at the first unread message (below its line), else at the newest.
  var unread = document.getElementById('unread-line');
  if (unread) list.scrollTop = unread.offsetTop - list.offsetTop; else list.scrollTop = list.scrollHeight;
  // And the page scrolled so that the composer is on screen, below the conversation.
  var composerForm = document.getElementById('composer');
  if (composerForm && composerForm.getBoundingClientRect().bottom > window.innerHeight) composerForm.scrollIntoView({ block: 'end' });
  document.addEventListener('visibilitychange', function () { if (!document.hidden && lastId) markRead(lastId); });
  // Opening the page (a GET) marks nothing read; the open, visible page says so explicitly,
  // once the page's scripts have all loaded.
  window.addEventListener('load', function () { if (lastId) markRead(lastId); });
  connect();
})();
