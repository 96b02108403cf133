// Rounds: small helpers, no build step. `rounds.fetch` adds the CSRF token for JSON writes.
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.rounds = {
    csrf: meta ? meta.content : null,
    fetch: function (url, options) {
      options = options || {};
      options.headers = Object.assign({ 'Accept': 'application/json' }, options.headers || {});
      if (this.csrf) options.headers['X-CSRF-Token'] = this.csrf;
      options.credentials = 'same-origin';
      return fetch(url, options);
    }
  };
})();
