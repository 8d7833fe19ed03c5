// Small enhancements of every page: countdowns, forms that ask first, the trim form.

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

(function () {
  // Forms that ask first: <form data-confirm="Delete this for good?">
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // The replay trim form: "Use the video's position" copies the preview's time (m:ss.s).
  function clock(t) {
    var s = Math.max(0, t);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var rest = (s % 60).toFixed(1);
    if (Number(rest) < 10) rest = "0" + rest;
    return (h ? h + ":" + (m < 10 ? "0" : "") : "") + m + ":" + rest;
  }
  document.querySelectorAll("[data-trim-here]").forEach(function (button) {
    button.addEventListener("click", function () {
      var video = document.getElementById("replay-preview");
      var input = document.getElementById(button.dataset.trimHere);
      if (video && input) input.value = clock(video.currentTime || 0);
    });
  });
})();
