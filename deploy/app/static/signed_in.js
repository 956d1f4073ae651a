// Hands the session the app's backend started to the browser client, which keeps it refreshed.
(function () {
  'use strict';
  var block = document.getElementById('grant');
  window.TokenGate.adopt(JSON.parse(block.textContent), block.dataset.user);
  location.replace(block.dataset.next || '/app/');
})();
