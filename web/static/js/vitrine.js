// Vitrine viewer pages: small progressive enhancements; every page works without them.
"use strict";

(function () {
  // Countdowns: <p class="countdown" data-starts="UNIX" data-label-*="in {d} d {h} h">
  function render(el) {
    var left = Number(el.dataset.starts) - Date.now() / 1000;
    if (left <= 0) {
      el.textContent = el.dataset.labelNow;
      return;
    }
    var d = Math.floor(left / 86400);
    var h = Math.floor((left % 86400) / 3600);
    var m = Math.max(1, Math.ceil((left % 3600) / 60));
    var label = d > 0 ? el.dataset.labelDays : h > 0 ? el.dataset.labelHours : el.dataset.labelMinutes;
    el.textContent = label.replace("{d}", d).replace("{h}", h).replace("{m}", m);
  }
  function tick() {
    document.querySelectorAll(".countdown[data-starts]").forEach(render);
  }
  tick();
  setInterval(tick, 15000);
})();
