// Every operation goes through TokenGate.fetch: it carries the token (and the CSRF token in cookie
// mode) and follows refreshes and rotation.
(function () {
  'use strict';
  var TG = window.TokenGate;
  var status = document.getElementById('status');
  function show(text) { status.textContent = text; }
  async function load() {
    var response = await TG.fetch('/app/api/notes');
    if (!response.ok) { show('notes: ' + response.status); return; }
    var list = document.getElementById('notes');
    list.textContent = '';
    (await response.json()).notes.forEach(function (text) {
      var item = document.createElement('li');
      item.textContent = text;
      list.appendChild(item);
    });
    show('notes: 200');
  }
  document.getElementById('add').addEventListener('submit', async function (event) {
    event.preventDefault();
    var input = document.getElementById('text');
    var response = await TG.fetch('/app/api/notes', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text: input.value })
    });
    input.value = '';
    show('added: ' + response.status);
    load();
  });
  document.getElementById('logout').addEventListener('click', async function () {
    await TG.logout();
    location.assign('/app/login');
  });
  TG.addEventListener('expired', function () { location.assign('/app/login?next=/app/'); });
  load();
})();
