// The replay page: chapters, the "shown now" card and the chat replay, following the video.
// Chapters come in the page (li.chapter[data-t][data-end] with the product's fields); the
// chat comes from data-chat-url?from=&to= in windows of WINDOW seconds, fetched just ahead
// of playback. What people wrote is only ever inserted as text. A link ?t=90 starts at
// 1:30; without it the replay resumes where this browser left it (localStorage per show).
// It reports replay_view (kpi.js) the first time the video plays.
// For browser tests: body[data-replay-chapter] is the index of the chapter shown now (-1:
// none) and body[data-replay-chat] the number of chat messages on screen.
import { $, make, setLink } from "./dom.js";
import { send } from "./kpi.js";
import { render as renderMessage } from "./messages.js";

(function () {
  var root = document.querySelector("article.replay[data-chat-url]");
  var video = document.getElementById("replay");
  if (!root || !video) return;
  var d = root.dataset;

  var WINDOW = 30; // seconds of chat per request
  var SHOWN = 100; // chat messages kept on screen

  // ---- chapters and the "shown now" card -------------------------------------------------

  var chapters = Array.prototype.slice.call(document.querySelectorAll("#chapters li.chapter"));
  var card = $("replay-now");
  var current = -2;

  function chapterAt(t) {
    var found = -1;
    for (var i = 0; i < chapters.length; i++) {
      var c = chapters[i].dataset;
      if (Number(c.t) <= t + 0.05 && t < Number(c.end)) found = i;
    }
    return found;
  }

  function showChapter(i) {
    if (i === current) return;
    current = i;
    document.body.dataset.replayChapter = String(i);
    chapters.forEach(function (li, n) {
      li.classList.toggle("is-current", n === i);
    });
    if (!card) return;
    if (i < 0) {
      card.hidden = true;
      return;
    }
    var c = chapters[i].dataset;
    $("now-name").textContent = c.name || "";
    $("now-price").textContent = c.priceText || "";
    var media = $("now-media");
    media.textContent = "";
    if (c.image) {
      var img = make("img", "pinned-img");
      img.alt = "";
      img.width = 64;
      img.height = 64;
      img.src = c.image;
      media.appendChild(img);
    }
    setLink($("now-cart"), c.cart);
    setLink($("now-details"), c.details);
    card.dataset.productId = c.productId; // for the add_to_cart report (kpi.js)
    card.dataset.price = c.price;
    card.hidden = false;
  }

  function seek(t) {
    try {
      video.currentTime = t;
    } catch (err) {
      /* metadata not loaded yet: it is applied on loadedmetadata */
      pendingSeek = t;
    }
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () {});
  }
  var pendingSeek = null;

  // Questions answered on camera: each seeks to its answer.
  Array.prototype.forEach.call(document.querySelectorAll("#answer-chapters li"), function (li) {
    var button = li.querySelector("button");
    if (button) button.addEventListener("click", function () { seek(Number(li.dataset.t)); });
  });

  chapters.forEach(function (li) {
    var button = li.querySelector("button");
    if (!button) return;
    button.addEventListener("click", function () {
      seek(Number(li.dataset.t));
      showChapter(chapters.indexOf(li));
      video.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
  });

  // ---- chat replay -----------------------------------------------------------------------

  var list = $("chat-messages");
  var empty = $("chat-empty");
  var loaded = {}; // window index -> true (fetched) | "loading"
  var messages = []; // every fetched message, by time
  var shownUpTo = -1; // messages[0..shownUpTo] are due; the last SHOWN are on screen

  // A chat line, with its written answer under it; or a poll's result at its end.
  function render(m) {
    if (m.poll) return renderPoll(m.poll);
    var li = renderMessage(m, { staff: d.msgStaff, question: d.msgQuestion });
    if (m.answer) li.appendChild(make("p", "msg-answer", m.answer));
    return li;
  }

  function renderPoll(p) {
    var li = make("li", "msg poll-result");
    var total = p.counts.reduce(function (a, b) { return a + Number(b || 0); }, 0);
    li.appendChild(make("strong", "msg-name", d.msgPoll));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(make("span", "msg-text", p.question));
    var ol = make("ol", "poll-replay");
    p.options.forEach(function (label, i) {
      var pct = total ? Math.round((100 * Number(p.counts[i] || 0)) / total) : 0;
      var right = p.correct === i ? " · " + d.msgQuizRight : "";
      ol.appendChild(make("li", p.correct === i ? "is-correct" : null, label + " — " + pct + " %" + right));
    });
    li.appendChild(ol);
    return li;
  }

  function insert(batch) {
    var seen = {};
    messages.forEach(function (m) {
      seen[m.id] = true;
    });
    batch.forEach(function (m) {
      if (!seen[m.id]) messages.push(m);
    });
    messages.sort(function (a, b) {
      return a.t - b.t || a.id - b.id;
    });
    shownUpTo = -2; // redraw
  }

  async function load(index) {
    if (index < 0 || loaded[index]) return;
    var from = index * WINDOW;
    if (isFinite(video.duration) && from > video.duration + 1) return;
    loaded[index] = "loading";
    try {
      var r = await fetch(d.chatUrl + "?from=" + from + "&to=" + (from + WINDOW), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      });
      if (!r.ok) throw new Error("HTTP " + r.status);
      var body = await r.json();
      loaded[index] = true;
      insert(
        (body.messages || []).concat(
          (body.polls || []).map(function (p) {
            return { id: -p.id, t: p.t, poll: p }; // negative: never a chat message's id
          })
        )
      );
      update();
    } catch (err) {
      delete loaded[index]; // try again on the next tick
    }
  }

  function dueCount(t) {
    var lo = 0;
    var hi = messages.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (messages[mid].t <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo; // messages[0..lo-1] are at or before t
  }

  function showChat(t) {
    var due = dueCount(t) - 1;
    if (due === shownUpTo) return;
    var stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    if (shownUpTo >= -1 && due > shownUpTo && due - shownUpTo < SHOWN) {
      for (var i = shownUpTo + 1; i <= due; i++) list.appendChild(render(messages[i]));
      while (list.children.length > SHOWN) list.removeChild(list.firstChild);
    } else {
      list.textContent = "";
      for (var j = Math.max(0, due - SHOWN + 1); j <= due; j++) list.appendChild(render(messages[j]));
      stick = true;
    }
    shownUpTo = due;
    if (stick) list.scrollTop = list.scrollHeight;
    if (empty) empty.hidden = list.children.length > 0;
    document.body.dataset.replayChat = String(list.children.length);
  }

  // ---- following the playback ------------------------------------------------------------

  // Where the viewer is, kept so that leaving and coming back resumes there.
  var spot = "vitrine.replay." + d.showId;
  var savedAt = -1;
  function remember(force) {
    var t = pendingSeek !== null ? pendingSeek : Math.floor(video.currentTime || 0);
    if (!reported || (!force && Math.abs(t - savedAt) < 2)) return; // not played yet
    savedAt = t;
    try {
      window.localStorage.setItem(spot, String(t));
    } catch (err) {
      /* storage refused: no resume */
    }
  }

  function update() {
    var t = video.currentTime || 0;
    remember(false);
    showChapter(chapterAt(t));
    var index = Math.floor(t / WINDOW);
    load(index);
    if (t - index * WINDOW > WINDOW / 2) load(index + 1); // the next window, before it is due
    showChat(t);
  }

  video.addEventListener("timeupdate", update);
  video.addEventListener("seeked", update);
  video.addEventListener("loadedmetadata", function () {
    if (pendingSeek !== null) {
      video.currentTime = pendingSeek;
      pendingSeek = null;
    }
    update();
  });
  var reported = false;
  video.addEventListener("playing", function () {
    if (reported) return;
    reported = true;
    send("replay_view");
  });

  window.addEventListener("pagehide", function () { remember(true); });
  video.addEventListener("ended", function () {
    try {
      window.localStorage.removeItem(spot); // watched to the end: the next visit starts over
    } catch (err) {
      /* nothing kept */
    }
  });
  var start = Number(new URLSearchParams(window.location.search).get("t"));
  if (!(start > 0)) {
    try {
      start = Number(window.localStorage.getItem(spot)) || 0;
    } catch (err) {
      start = 0;
    }
  }
  if (start > 0) {
    if (video.readyState >= 1) video.currentTime = start;
    else pendingSeek = start;
  }
  document.body.dataset.replayChapter = "-1";
  document.body.dataset.replayChat = "0";
  update();
})();
