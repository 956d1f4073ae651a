extension StaticFiles {
    /// `/tokengate.js`: the dependency-free browser client (README, "Browser client").
    static let clientJS = #"""
        /* TokenGate browser client. window.TokenGate: login, adopt, fetch, logout, logoutAll, sessions,
           user, sessionId, expiresAt, addEventListener('login' | 'logout' | 'expired').
           The token lives in memory and sessionStorage only. */
        (function () {
          'use strict';
          // Loaded as a dedicated Worker: only keep time. Worker timers are not throttled like a hidden tab's.
          if (typeof window === 'undefined') {
            var timer = null;
            self.onmessage = function (e) {
              clearTimeout(timer);
              if (e.data > 0) timer = setTimeout(function () { self.postMessage('tick'); }, e.data);
            };
            return;
          }
          var KEY = 'tokengate';
          var scriptURL = document.currentScript ? document.currentScript.src : '/tokengate.js';
          var events = new EventTarget();
          var state = null;
          try { state = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (e) { state = null; }
          var worker = null;
          var fallbackTimer = null;
          var refreshing = null;

          function emit(name, detail) { events.dispatchEvent(new CustomEvent(name, { detail: detail })); }
          function save(next) {
            state = next;
            if (next) sessionStorage.setItem(KEY, JSON.stringify(next)); else sessionStorage.removeItem(KEY);
            schedule();
          }
          function adopt(grant, user) {
            save({ token: grant.access_token, user: user, sessionId: grant.session_id,
                   lifetime: grant.expires_in * 1000, expiresAt: Date.now() + grant.expires_in * 1000 });
          }
          function tick(delay) {
            if (!worker) {
              try { worker = new Worker(scriptURL); worker.onmessage = function () { refresh(); }; }
              catch (e) { worker = false; }
            }
            if (worker) { worker.postMessage(delay); return; }
            clearTimeout(fallbackTimer);
            if (delay > 0) fallbackTimer = setTimeout(refresh, delay);
          }
          function schedule() {
            if (!state) { tick(0); return; }
            // Refresh when 40% of the token's life is left.
            tick(Math.max(250, state.expiresAt - Date.now() - state.lifetime * 0.4));
          }
          function expired(reason) {
            var had = state !== null;
            save(null);
            if (had) emit('expired', { reason: reason });
          }
          async function errorOf(response) {
            try { return (await response.json()).error; } catch (e) { return 'http_' + response.status; }
          }
          // Cookie mode: the server's readable double-submit cookie, echoed on every request.
          function csrf() {
            var m = document.cookie.match(/(?:^|;\s*)__Host-tg_csrf=([^;]*)/);
            return m ? m[1] : null;
          }
          function authHeaders(token, headers) {
            headers = new Headers(headers || {});
            headers.set('Authorization', 'Bearer ' + token);
            var c = csrf();
            if (c) headers.set('X-CSRF-Token', c);
            return headers;
          }
          // A successor (rotation or refresh) is adopted only while the token it replaces is still
          // the current one: a late answer to an older request must not bring back a spent token.
          function follow(sent, token, expiresIn) {
            if (!state || state.token !== sent) return false;
            save(Object.assign({}, state, { token: token, expiresAt: Date.now() + (expiresIn || state.lifetime) }));
            return true;
          }
          function refresh() {
            if (!state) return Promise.resolve(false);
            if (refreshing) return refreshing;
            var sent = state.token;
            refreshing = fetch('/auth/refresh', { method: 'POST', headers: authHeaders(sent) })
              .then(async function (response) {
                if (response.ok) {
                  var grant = await response.json();
                  if (!follow(sent, grant.access_token, grant.expires_in * 1000)) schedule();
                  return true;
                }
                if (response.status === 401) {
                  var code = await errorOf(response);
                  if (state && state.token === sent) expired(code); else schedule();
                  return false;
                }
                tick(1000);  // store unavailable or network trouble: try again soon
                return false;
              }, function () { tick(1000); return false; })
              .finally(function () { refreshing = null; });
            return refreshing;
          }

          var api = {
            get user() { return state ? state.user : null; },
            get sessionId() { return state ? state.sessionId : null; },
            get expiresAt() { return state ? new Date(state.expiresAt) : null; },
            addEventListener: function (name, fn) { events.addEventListener(name, fn); },
            removeEventListener: function (name, fn) { events.removeEventListener(name, fn); },
            login: async function (username, password) {
              var response = await fetch('/auth/login', {
                method: 'POST', headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ username: username, password: password })
              });
              if (!response.ok) { var err = new Error(await errorOf(response)); err.status = response.status; throw err; }
              adopt(await response.json(), username.toLowerCase());
              emit('login', { user: state.user, sessionId: state.sessionId });
              return state.user;
            },
            // Takes over a session the app's backend started through the service API (its answer,
            // the same shape as a login's), and keeps it refreshed like a login's.
            adopt: function (grant, user) {
              if (!grant || !grant.access_token || !grant.session_id || !(grant.expires_in > 0)) throw new Error('not a login answer');
              adopt(grant, String(user).toLowerCase());
              emit('login', { user: state.user, sessionId: state.sessionId });
              return state.user;
            },
            fetch: async function (url, init) {
              init = Object.assign({}, init || {});
              // The token goes to this origin only, never to a third party the page calls.
              var target = new URL(url instanceof Request ? url.url : String(url), location.href);
              var sent = state && target.origin === location.origin ? state.token : null;
              if (sent) init.headers = authHeaders(sent, init.headers);
              var response = await fetch(url, init);
              var next = response.headers.get('X-Next-Token');
              if (next && sent && next !== sent) follow(sent, next);
              if (response.status === 401 && sent && state && state.token === sent) {
                var code = await errorOf(response.clone());
                if (code === 'token_revoked' || code === 'token_expired' || code === 'session_expired') expired(code);
              }
              return response;
            },
            logout: async function () { await end('/auth/logout'); },
            logoutAll: async function () { await end('/auth/logout-all'); },
            sessions: async function () {
              var response = await api.fetch('/auth/sessions');
              if (!response.ok) throw new Error(await errorOf(response));
              return response.json();
            },
            refresh: refresh
          };
          async function end(path) {
            if (!state) return;
            var token = state.token;
            save(null);
            try { await fetch(path, { method: 'POST', headers: authHeaders(token) }); }
            finally { emit('logout', {}); }
          }

          // Closing or leaving the page: shorten the session to CLOSE_GRACE. A reload refreshes within it.
          window.addEventListener('pagehide', function () {
            if (!state) return;
            var body = new URLSearchParams({ token: state.token });
            var c = csrf();
            if (c) body.set('csrf', c);
            navigator.sendBeacon('/auth/close', body);
          });
          window.addEventListener('pageshow', function (e) { if (e.persisted && state) refresh(); });
          // A reloaded page resumes its session at once.
          if (state) refresh();
          window.TokenGate = api;
        })();
        """#
}
