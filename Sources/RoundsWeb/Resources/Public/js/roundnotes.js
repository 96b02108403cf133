// Ward-round dictation at the bedside: records with the microphone (pause and resume), keeps
// each finished recording on the device (IndexedDB) until the server has it, uploads it with a
// progress bar, and when the network drops uploads it once it returns. Each recording carries
// its own idempotency key, so a resend after a lost answer never makes a second note.
(function () {
  'use strict';
  function openStore() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error('no IndexedDB')); return; }
      var open = indexedDB.open('rounds-recordings', 1);
      open.onupgradeneeded = function () { open.result.createObjectStore('pending', { keyPath: 'key' }); };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }
  function withStore(mode, fn) {
    return openStore().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction('pending', mode), result;
        tx.oncomplete = function () { resolve(result); };
        tx.onerror = function () { reject(tx.error); };
        result = fn(tx.objectStore('pending'));
      });
    });
  }
  function keep(item) { return withStore('readwrite', function (s) { s.put(item); }).catch(function () {}); }
  function forget(key) { return withStore('readwrite', function (s) { s.delete(key); }).catch(function () {}); }
  function pending() {
    return withStore('readonly', function (s) {
      var out = [];
      s.openCursor().onsuccess = function (e) { var c = e.target.result; if (c) { out.push(c.value); c.continue(); } };
      return out;
    }).catch(function () { return []; });
  }

  var box = document.getElementById('recorder');
  if (box) {
    var d = box.dataset, status = document.getElementById('record-status'), bar = document.getElementById('record-progress');
    var start = document.getElementById('record-start'), pause = document.getElementById('record-pause');
    var resume = document.getElementById('record-resume'), stop = document.getElementById('record-stop');
    var clock = document.getElementById('record-time');
    var recorder = null, chunks = [], seconds = 0, ticker = null, uploading = false;
    function show(el, on) { el.hidden = !on; }
    function say(text) { status.textContent = text; }
    function tick() { seconds += 1; clock.textContent = Math.floor(seconds / 60) + ':' + ('0' + seconds % 60).slice(-2); }
    function newKey() { return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : d.key + '-' + Date.now(); }

    function isMine(i) { return i.patient === d.patient && i.staff === d.staff; }

    // One upload at a time; what waits stays on the device and goes next.
    function upload(item) {
      if (uploading) return Promise.resolve();
      uploading = true;
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open('POST', '/patients/' + encodeURIComponent(item.patient) + '/round-notes/recording?key=' + encodeURIComponent(item.key));
        xhr.setRequestHeader('Content-Type', item.type);
        xhr.setRequestHeader('X-CSRF-Token', d.csrf);
        xhr.setRequestHeader('Accept', 'application/json');
        show(bar, true); bar.value = 0; say(d.tUploading);
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.value = Math.round(e.loaded * 100 / e.total); } };
        xhr.onload = function () {
          uploading = false;
          show(bar, false);
          var answer = null;
          try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
          if ((xhr.status === 201 || xhr.status === 200) && answer && answer.url) {
            // Forgotten only once the server has it; then the next waiting one, else the new note.
            forget(item.key).then(pending).then(function (items) {
              var next = items.filter(isMine)[0];
              if (next) { upload(next).then(resolve); } else { window.location.href = answer.url; resolve(); }
            });
            return;
          }
          if (xhr.status === 409 || xhr.status === 413 || xhr.status === 422) {
            // The server will never take this one: say why, and let it go.
            forget(item.key);
            say(d.tFailed + ((answer && (answer.detail || answer.title)) || ('HTTP ' + xhr.status)));
          } else if (xhr.status === 401 || xhr.status === 403 || !answer) {
            say(d.tSignin);  // kept: sent once she has signed in again
          } else {
            say(d.tOffline);  // kept; tried again when the network or the server is back
          }
          resolve();
        };
        xhr.onerror = function () { uploading = false; show(bar, false); say(d.tOffline); resolve(); };
        xhr.send(item.blob);
      });
    }

    function retryPending() {
      if (uploading) return;
      pending().then(function (items) {
        var mine = items.filter(isMine);
        if (mine.length) { say(d.tPending); upload(mine[0]); }
      });
    }
    window.addEventListener('online', retryPending);
    // The online event is not reliable on every tablet: look again now and then.
    setInterval(function () { if (!uploading && navigator.onLine !== false) retryPending(); }, 10000);
    retryPending();

    start.addEventListener('click', function () {
      if (!navigator.mediaDevices || !window.MediaRecorder) { say(d.tNomic); return; }
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        var type = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'].filter(function (t) {
          return MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t);
        })[0];
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        chunks = []; seconds = 0; clock.textContent = '0:00';
        recorder.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
        recorder.onstop = function () {
          stream.getTracks().forEach(function (t) { t.stop(); });
          clearInterval(ticker);
          var mime = (recorder.mimeType || 'audio/webm').split(';')[0];
          // Kept with whose it is: on a shared iPad, another doctor's session never sends it.
          var item = { key: newKey(), patient: d.patient, staff: d.staff, type: mime, blob: new Blob(chunks, { type: mime }), at: Date.now() };
          keep(item).then(function () { if (uploading) { say(d.tPending); } else { upload(item); } });
          show(start, true); show(pause, false); show(resume, false); show(stop, false);
        };
        recorder.start(1000);
        ticker = setInterval(tick, 1000);
        say(d.tRecording);
        show(start, false); show(pause, true); show(stop, true);
      }).catch(function () { say(d.tNomic); });
    });
    pause.addEventListener('click', function () {
      if (recorder && recorder.state === 'recording') { recorder.pause(); clearInterval(ticker); say(d.tPaused); show(pause, false); show(resume, true); }
    });
    resume.addEventListener('click', function () {
      if (recorder && recorder.state === 'paused') { recorder.resume(); ticker = setInterval(tick, 1000); say(d.tRecording); show(pause, true); show(resume, false); }
    });
    stop.addEventListener('click', function () { if (recorder && recorder.state !== 'inactive') recorder.stop(); });
  }

  var sign = document.getElementById('sign-note');
  if (sign) {
    sign.addEventListener('click', function (e) { if (!window.confirm(sign.dataset.confirm)) e.preventDefault(); });
  }
})();
