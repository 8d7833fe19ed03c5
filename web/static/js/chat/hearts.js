// The show page's hearts: one floats up at each tap; a burst travels as a few frames.
import { make, remove } from "../dom.js";

var MAX_FLOATING = 40; // hearts in the air at once
var HEART_BATCH_MS = 300;

// page: {els, send} of the show page (chat.js).
export function hearts(page) {
  var els = page.els;
  var queued = 0;
  var timer = null;
  var lastSent = 0;
  var motion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

  function reducedMotion() {
    return !!(motion && motion.matches);
  }

  function float(n) {
    if (!els.hearts || n <= 0) return;
    if (reducedMotion()) {
      // No flying: the button glows once instead.
      if (!els.heart) return;
      els.heart.classList.remove("is-glowing");
      void els.heart.offsetWidth; // restart the animation
      els.heart.classList.add("is-glowing");
      return;
    }
    n = Math.min(n, 12, MAX_FLOATING - els.hearts.children.length);
    for (var i = 0; i < n; i++) {
      var h = make("span", "float-heart");
      h.classList.add("fh-path-" + Math.floor(Math.random() * 6));
      h.classList.add("fh-color-" + Math.floor(Math.random() * 4));
      h.classList.add("fh-delay-" + (i % 6));
      var done = remove.bind(null, h);
      h.addEventListener("animationend", done);
      h.addEventListener("animationcancel", done);
      setTimeout(done, 4000); // in case no animation runs at all
      els.hearts.appendChild(h);
    }
  }

  function flush() {
    timer = null;
    if (!queued) return;
    var count = Math.min(queued, 10);
    queued -= count;
    page.send(count === 1 ? { type: "heart" } : { type: "heart", count: count });
    lastSent = Date.now();
    if (queued) timer = setTimeout(flush, HEART_BATCH_MS);
  }

  // One tap, one heart right away; a burst of taps travels as a few frames with a count.
  function onTap() {
    float(1);
    queued++;
    if (timer) return;
    var wait = HEART_BATCH_MS - (Date.now() - lastSent);
    if (wait <= 0) flush();
    else timer = setTimeout(flush, wait);
  }

  function wire() {
    if (!els.heart) return;
    els.heart.addEventListener("click", onTap);
    els.heart.addEventListener("animationend", function () {
      els.heart.classList.remove("is-glowing");
    });
  }

  return { float: float, wire: wire };
}
