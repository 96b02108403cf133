// The urgent panel: open critical values of my patients, at the top of every page, in the page
// flow (never floating over it) and without an acknowledge control — that is on each alert's own
// page, with a typed read-back. The server renders the panel; this script keeps it current (a new
// alert or one acknowledged anywhere arrives over the WebSocket) and sounds a tone every 10 s
// while anything is open for me, stopping as soon as nothing is.
(function () {
  if (!document.body.dataset.me) return;
  var timer = null;

  function panel() { return document.getElementById('urgent-alerts'); }
  function count() { var p = panel(); return p ? parseInt(p.dataset.count || '0', 10) : 0; }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); setTimeout(function () { osc.stop(); ctx.close(); }, 400);
    } catch (e) { /* no audio on this device */ }
  }

  function schedule() {
    if (count() > 0 && !timer) {
      timer = setInterval(function () { refresh(); if (count() > 0) beep(); }, 10000);
    } else if (count() === 0 && timer) {
      clearInterval(timer); timer = null;
    }
  }

  function refresh() {
    fetch('/alerts/urgent', { headers: { 'Accept': 'text/html' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        var current = panel();
        if (html === null || !current) return;
        var before = count();
        var holder = document.createElement('div');
        holder.innerHTML = html.trim();
        var next = holder.firstElementChild;
        // Unchanged: leave it alone (a list being scrolled or read is not redrawn under the finger).
        if (!next || next.dataset.signature === current.dataset.signature) return;
        var list = current.querySelector('.urgent-list'), scrolled = list ? list.scrollTop : 0;
        current.replaceWith(next);
        var nextList = next.querySelector('.urgent-list');
        if (nextList) nextList.scrollTop = scrolled;
        if (count() > before) beep();
        schedule();
      })
      .catch(function () { /* offline: the next tick tries again */ });
  }

  function connect() {
    if (!window.WebSocket) return;
    var socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
    socket.onmessage = function (e) {
      var event = JSON.parse(e.data), message = event.message;
      // A card posted or changed (a new critical value, one acknowledged elsewhere): ask again.
      if (message && message.card) refresh();
    };
    socket.onclose = function () { setTimeout(connect, 2000); };
  }

  if (count() > 0) beep();
  schedule();
  connect();
})();
