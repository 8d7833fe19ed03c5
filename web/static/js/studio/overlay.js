// What the studio draws over the preview from the live room: chat lines, hearts, the line-up.
// It keeps its own connection to the room (room.js, docs/protocol.md), as staff by the
// session cookie: the newest chat lines with questions marked (#studio-feed), the hearts
// counted since the page opened (#studio-hearts) and floating up unless motion is reduced,
// and the line-up strip (#studio-strip): a tap pins a product for every viewer, a tap on
// the pinned one unpins it. For browser tests: body[data-studio-room] holds the socket's
// state, body[data-studio-pinned] the pinned product's id ("" for none) and
// body[data-studio-hearts] the hearts counted.
import { $, findById, make, remove, text } from "../dom.js";
import { connect } from "../room.js";

var FEED_LINES = 8; // the oldest lines also give way when there is no room (CSS)
var FLOATING_MAX = 12; // hearts in flight at once

export function overlay(d) {
  var els = {
    feed: $("studio-feed"),
    strip: $("studio-strip"),
    hearts: $("studio-hearts"),
    heartsCount: $("studio-hearts-count"),
    floating: $("studio-floating")
  };
  var room = null;
  var staff = false;
  var open = false;
  var pinned = null;
  var hearts = 0;
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

  function addLine(m) {
    if (!els.feed || !m || findById(els.feed, m.id)) return;
    var li = document.createElement("li");
    li.dataset.id = String(m.id);
    if (m.question) {
      li.classList.add("is-question");
      li.appendChild(make("span", "feed-question", d.msgQuestion));
    }
    if (m.answered) li.classList.add("is-answered");
    li.appendChild(make("strong", "feed-name", m.name));
    li.appendChild(document.createTextNode(m.text));
    els.feed.appendChild(li);
    while (els.feed.children.length > FEED_LINES) els.feed.removeChild(els.feed.firstElementChild);
  }

  function applyProduct(p) {
    pinned = p && p.id !== undefined && p.id !== null ? String(p.id) : null;
    document.body.dataset.studioPinned = pinned || "";
    if (!els.strip) return;
    els.strip.querySelectorAll(".strip-pin").forEach(function (b) {
      var on = b.dataset.productId === pinned;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      text(b.querySelector(".strip-label"), on ? d.msgPinned : d.msgPin);
      if (on) showInStrip(b.parentNode);
    });
  }

  // The pinned product is brought into the strip's view (the strip scrolls sideways).
  function showInStrip(li) {
    var strip = els.strip;
    var left = li.offsetLeft - strip.offsetLeft;
    if (left >= strip.scrollLeft && left + li.offsetWidth <= strip.scrollLeft + strip.clientWidth) return;
    var target = Math.max(0, left - 12);
    if (strip.scrollTo) strip.scrollTo({ left: target, behavior: still && still.matches ? "auto" : "smooth" });
    else strip.scrollLeft = target;
  }

  function renderEnabled() {
    if (!els.strip) return;
    els.strip.querySelectorAll(".strip-pin").forEach(function (b) {
      b.disabled = !(open && staff);
    });
  }

  function floatHeart() {
    if (!els.floating || (still && still.matches) || document.visibilityState !== "visible") return;
    if (els.floating.children.length >= FLOATING_MAX) return;
    var h = make("span", null, "♥");
    h.style.right = Math.round(Math.random() * 24) + "px";
    h.addEventListener("animationend", function () { remove(h); });
    els.floating.appendChild(h);
  }

  function addHearts(n) {
    var count = Math.max(0, Math.min(1000, Number(n) || 0));
    if (!count) return;
    hearts += count;
    document.body.dataset.studioHearts = String(hearts);
    text(els.heartsCount, String(hearts));
    if (els.hearts) els.hearts.hidden = false;
    for (var i = 0; i < Math.min(count, 3); i++) floatHeart();
  }

  var handlers = {
    welcome: function (m) {
      staff = !!m.staff;
      renderEnabled();
    },
    state: function (s) {
      if (els.feed) els.feed.textContent = "";
      (s.messages || []).slice(-FEED_LINES).forEach(addLine);
      applyProduct(s.product || null);
    },
    chat: addLine,
    deleted: function (m) {
      remove(findById(els.feed, m.id));
    },
    answered: function (m) {
      var li = findById(els.feed, m.id);
      if (li) li.classList.add("is-answered");
    },
    product: function (m) {
      applyProduct(m.product || null);
    },
    hearts: function (m) {
      addHearts(m.count);
    }
  };

  function wire() {
    if (!els.strip) return;
    els.strip.addEventListener("click", function (event) {
      var b = event.target.closest(".strip-pin");
      if (!b || b.disabled || !room) return;
      var id = Number(b.dataset.productId);
      if (!isFinite(id)) return;
      if (b.dataset.productId === pinned) room.send({ type: "unpin_product" });
      else room.send({ type: "pin_product", product: id });
    });
  }

  function start() {
    if (!d.roomUrl || (!els.feed && !els.strip)) return;
    wire();
    room = connect(d.roomUrl, {
      name: null,
      onMessage: function (m) {
        if (Object.prototype.hasOwnProperty.call(handlers, m.type)) handlers[m.type](m);
      },
      onState: function (state) {
        document.body.dataset.studioRoom = state;
        open = state === "open";
        if (!open) staff = false; // until the next welcome
        renderEnabled();
      }
    });
  }

  // The show is over: nothing is pinned from here any more.
  function stop() {
    if (room) room.close();
    room = null;
    open = false;
    renderEnabled();
    if (els.strip && els.strip.parentNode) els.strip.parentNode.hidden = true;
  }

  return { start: start, stop: stop };
}
