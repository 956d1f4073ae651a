/// The demo page and browser client, compiled into the binary so a deployment is one file.
enum StaticFiles {
    /// `/`: the demo page.
    static let indexHTML = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>TokenGate demo</title>
        <style>
          :root { --fg: #1d2430; --muted: #5b6678; --line: #dde3ec; --accent: #2456d6; --bad: #b42318; --ok: #1a7f37; }
          * { box-sizing: border-box; }
          body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f5f7fb; }
          header { background: #fff; border-bottom: 1px solid var(--line); padding: 14px 24px; display: flex; align-items: center; gap: 12px; }
          header h1 { font-size: 18px; margin: 0; }
          header .tag { color: var(--muted); font-size: 13px; }
          main { max-width: 860px; margin: 24px auto; padding: 0 16px; display: grid; gap: 16px; }
          .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; }
          .card h2 { font-size: 15px; margin: 0 0 12px; }
          label { display: block; font-size: 13px; color: var(--muted); margin-bottom: 4px; }
          input { width: 100%; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; margin-bottom: 12px; }
          button { font: inherit; padding: 7px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
          button.secondary { background: #fff; color: var(--accent); }
          button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
          .row { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
          dl { display: grid; grid-template-columns: 140px 1fr; gap: 6px 12px; margin: 0 0 14px; }
          dt { color: var(--muted); } dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
          .meter { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin-top: 6px; }
          .meter > div { height: 100%; background: var(--ok); width: 0; transition: width .2s linear; }
          pre { background: #0f172a; color: #e2e8f0; padding: 12px; border-radius: 8px; overflow: auto; min-height: 44px; margin: 12px 0 0; }
          table { width: 100%; border-collapse: collapse; font-size: 14px; }
          th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
          th { color: var(--muted); font-weight: 500; }
          .error { color: var(--bad); min-height: 1.5em; margin: 0; }
          .hidden { display: none; }
          .current { color: var(--ok); font-weight: 600; }
        </style>
        </head>
        <body>
        <header><h1>TokenGate</h1><span class="tag">short-lived JWTs, every one a Redis key</span></header>
        <main>
          <section class="card" id="login-card">
            <h2>Log in</h2>
            <form id="login-form" autocomplete="on">
              <label for="username">Username</label><input id="username" name="username" autocomplete="username" required>
              <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
              <div class="row"><button type="submit" id="login-button">Log in</button></div>
              <p class="error" id="login-error"></p>
            </form>
          </section>
          <section class="card hidden" id="session-card">
            <h2>Signed in</h2>
            <dl>
              <dt>User</dt><dd id="user"></dd>
              <dt>Session</dt><dd id="session"></dd>
              <dt>Token expires in</dt><dd><span id="countdown"></span><div class="meter"><div id="meter"></div></div></dd>
            </dl>
            <div class="row">
              <button id="call-api">Call /api/me</button>
              <button class="secondary" id="logout">Log out</button>
              <button class="danger" id="logout-all">Log out everywhere</button>
            </div>
            <pre id="api-output">Press "Call /api/me" to make a protected request.</pre>
          </section>
          <section class="card hidden" id="sessions-card">
            <div class="row" style="justify-content: space-between"><h2>Your sessions</h2><button class="secondary" id="reload-sessions">Reload</button></div>
            <table><thead><tr><th>Session</th><th>Started</th><th>Last seen</th><th>Address</th><th></th></tr></thead><tbody id="sessions"></tbody></table>
          </section>
        </main>
        <script src="/tokengate.js"></script>
        <script src="/demo.js"></script>
        </body>
        </html>
        """#

    /// `/demo.js`: the demo page's behaviour (kept out of the HTML so the page's CSP allows no inline script).
    static let demoJS = #"""
        (function () {
          'use strict';
          var TG = window.TokenGate;
          var $ = function (id) { return document.getElementById(id); };
          function text(id, value) { $(id).textContent = value; }
          function show() {
            var signedIn = !!TG.user;
            $('login-card').classList.toggle('hidden', signedIn);
            $('session-card').classList.toggle('hidden', !signedIn);
            $('sessions-card').classList.toggle('hidden', !signedIn);
            if (signedIn) { text('user', TG.user); text('session', TG.sessionId); loadSessions(); }
          }
          function countdown() {
            if (!TG.expiresAt) return;
            var left = Math.max(0, TG.expiresAt.getTime() - Date.now());
            text('countdown', (left / 1000).toFixed(1) + ' s');
            var total = Number(sessionStorage.getItem('tokengate') && JSON.parse(sessionStorage.getItem('tokengate')).lifetime) || 30000;
            $('meter').style.width = Math.min(100, 100 * left / total) + '%';
          }
          async function loadSessions() {
            var body = $('sessions');
            try {
              var list = await TG.sessions();
              body.replaceChildren();
              list.forEach(function (s) {
                var row = document.createElement('tr');
                [s.session_id.slice(0, 10) + '…', s.created_at.replace('T', ' '), s.last_seen.replace('T', ' '), s.ip].forEach(function (v) {
                  var cell = document.createElement('td'); cell.textContent = v; row.appendChild(cell);
                });
                var action = document.createElement('td');
                if (s.current) { action.textContent = 'this tab'; action.className = 'current'; }
                else {
                  var button = document.createElement('button'); button.className = 'danger'; button.textContent = 'Revoke';
                  button.onclick = async function () { await TG.fetch('/auth/sessions/' + encodeURIComponent(s.session_id), { method: 'DELETE' }); loadSessions(); };
                  action.appendChild(button);
                }
                row.appendChild(action);
                body.appendChild(row);
              });
            } catch (e) { body.replaceChildren(); }
          }
          $('login-form').addEventListener('submit', async function (e) {
            e.preventDefault();
            text('login-error', '');
            try { await TG.login($('username').value, $('password').value); $('password').value = ''; }
            catch (err) { text('login-error', err.message === 'invalid_credentials' ? 'Unknown user or wrong password.' : 'Login failed: ' + err.message); }
          });
          $('call-api').addEventListener('click', async function () {
            var response = await TG.fetch('/api/me');
            text('api-output', response.status + ' ' + JSON.stringify(await response.json(), null, 2));
          });
          $('logout').addEventListener('click', function () { TG.logout(); });
          $('logout-all').addEventListener('click', function () { TG.logoutAll(); });
          $('reload-sessions').addEventListener('click', loadSessions);
          TG.addEventListener('login', show);
          TG.addEventListener('logout', show);
          TG.addEventListener('expired', function (e) { show(); text('login-error', 'Your session ended (' + e.detail.reason + '). Please log in again.'); });
          setInterval(countdown, 200);
          show();
        })();
        """#
}
