// The live room's websocket (docs/protocol.md), shared by the show page and the moderation panel.
// It says hello, keeps the connection alive with pings, hands every message of the
// server's frames (JSON arrays) to onMessage, and reconnects by itself with a back-off
// (1 s, 2 s, 4 s... at most 15 s, plus jitter), except after a ban. It shows no text of
// its own.
//
// With `feed: true` (the show page), a page the socket refuses (too many connections from
// its address, two attempts in a row that never opened, no WebSocket at all), or whose
// video plays over HLS, reads the room's feed and sends by POST instead (chat/feed.js),
// and tries the socket again every minute. Broadcast frames are numbered (a `seq` message
// first in each, and in `state`): the messages of a frame already seen are skipped, so
// nothing is lost or shown twice across a switch. body[data-room-path] is "socket" or
// "feed", for tests.
//
//   import { connect } from "./room.js";
//   var room = connect("/ws/shows/7", {
//     name: "Ana",                       // or a function returning the name (or null)
//     onMessage: function (msg) {},      // each message object, in order
//     onState: function (state) {},      // connecting, open, reconnecting, closed
//     feed: true                         // may fall back to the HTTP feed
//   });
//   room.send({type: "chat", text: "Hi"}); // false (and dropped) while not open
//   room.close();
import { clock, format, plural } from "./words.js";
import { feedLink } from "./chat/feed.js";

var PING_MS = 25000;
var SILENT_MS = 60000; // nothing at all from the server this long: the connection is dead
var FIRST_BACKOFF_MS = 1000;
var MAX_BACKOFF_MS = 15000;
var REFUSED_FOR_FEED = 2; // attempts in a row that never opened before reading the feed
var SOCKET_AGAIN_MS = 60000; // on the feed: how often the socket is tried again

export function connect(url, opts) {
  opts = opts || {};
  var ws = null;
  var state = null;
  var failedOnce = false; // a connection was lost or refused: later attempts are reconnections
  var stopped = false; // close() was called, or we were banned
  var suspended = false; // the page went into the back/forward cache
  var banned = false; // a "banned" notice arrived on the current connection
  var backoff = FIRST_BACKOFF_MS;
  var retryTimer = null;
  var pingTimer = null;
  var lastHeard = 0;
  var lastSeq = null; // the number of the last broadcast frame handed on
  var path = "socket"; // or "feed"
  var refused = 0; // attempts in a row that never opened
  var crowded = false; // a "too_many_connections" notice on the current connection
  var showId = (/^\/ws\/shows\/(\d+)$/.exec(url) || [])[1];
  var feed = opts.feed && showId ? feedLink(showId, {
    frame: deliverFrame,
    last: function () {
      return lastSeq;
    },
    name: currentName,
    state: function (s) {
      if (path === "feed") setState(s);
    },
    banned: function () {
      stopped = true;
      close();
    }
  }) : null;

  function onHls() {
    return document.body.dataset.playerPath === "hls";
  }

  function setState(s) {
    if (state === s) return;
    state = s;
    if (opts.onState) {
      try {
        opts.onState(s);
      } catch (err) {
        console.error("vitrine: room onState failed", err);
      }
    }
  }

  function currentName() {
    var n = typeof opts.name === "function" ? opts.name() : opts.name;
    return n || null;
  }

  function deliver(msg) {
    if (!msg || typeof msg !== "object" || !opts.onMessage) return;
    try {
      opts.onMessage(msg);
    } catch (err) {
      console.error("vitrine: room message handling failed", msg && msg.type, err);
    }
  }

  // One frame's messages (or a POST's answer), skipping those of frames already seen.
  function deliverFrame(data) {
    var skipping = false;
    for (var i = 0; i < data.length; i++) {
      var m = data[i];
      if (m && m.type === "seq") {
        skipping = lastSeq !== null && m.seq <= lastSeq;
        if (!skipping) lastSeq = m.seq;
        continue;
      }
      if (m && m.type === "state" && typeof m.seq === "number") {
        lastSeq = m.seq; // the state includes every frame up to its number
        skipping = false;
      }
      if (skipping) continue;
      if (m && m.type === "notice" && m.code === "banned") banned = true;
      if (m && m.type === "notice" && m.code === "too_many_connections") crowded = true;
      deliver(m);
    }
  }

  function setPath(p) {
    path = p;
    document.body.dataset.roomPath = p;
  }

  // Read the feed and send by POST; the socket is tried again later (not while on HLS).
  function toFeed() {
    setPath("feed");
    if (stopped || suspended) return;
    if (state === null) setState("connecting");
    if (!feed.running()) feed.start();
    clearTimeout(retryTimer);
    retryTimer = onHls() ? null : setTimeout(function () {
      retryTimer = null;
      open();
    }, SOCKET_AGAIN_MS);
  }

  function sendOn(sock, obj) {
    if (!sock || sock !== ws || sock.readyState !== 1) return false;
    try {
      sock.send(JSON.stringify(obj));
      return true;
    } catch (err) {
      return false;
    }
  }

  function stopPing() {
    clearInterval(pingTimer);
    pingTimer = null;
  }

  function startPing(sock) {
    stopPing();
    pingTimer = setInterval(function () {
      if (sock !== ws) return;
      if (Date.now() - lastHeard > SILENT_MS) {
        lost(sock); // a dead connection (e.g. a phone that changed networks)
        return;
      }
      sendOn(sock, { type: "ping" });
    }, PING_MS);
  }

  function scheduleRetry() {
    if (stopped || suspended || retryTimer) return;
    if (feed && (path === "feed" || refused >= REFUSED_FOR_FEED || crowded || onHls())) {
      toFeed();
      return;
    }
    var wait = backoff + Math.random() * Math.min(1000, backoff * 0.3);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      open();
    }, wait);
  }

  // The connection is gone: forget it and try again (unless banned or stopped).
  function lost(sock, code, opened) {
    if (sock !== ws) return;
    ws = null;
    stopPing();
    if (!opened) refused++;
    try {
      sock.close();
    } catch (err) {
      /* already closed */
    }
    if (code === 1008 && banned) stopped = true;
    if (stopped) {
      setState("closed");
      return;
    }
    failedOnce = true;
    if (path !== "feed") setState("reconnecting");
    scheduleRetry();
  }

  function open() {
    if (stopped || suspended || ws) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    banned = false;
    crowded = false;
    if (feed && (onHls() || typeof WebSocket !== "function")) {
      toFeed();
      return;
    }
    if (path !== "feed") setState(failedOnce ? "reconnecting" : "connecting");
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    var sock;
    try {
      sock = new WebSocket(proto + window.location.host + url);
    } catch (err) {
      console.warn("vitrine: websocket refused", err);
      failedOnce = true;
      refused++;
      if (path !== "feed") setState("reconnecting");
      scheduleRetry();
      return;
    }
    ws = sock;
    var opened = false;
    sock.addEventListener("open", function () {
      if (sock !== ws) return;
      opened = true;
      refused = 0;
      lastHeard = Date.now();
      if (feed) feed.stop(); // back on the socket: its state follows the hello
      setPath("socket");
      setState("open");
      sendOn(sock, { type: "hello", v: 1, name: currentName() });
      startPing(sock);
    });
    sock.addEventListener("message", function (event) {
      if (sock !== ws) return;
      lastHeard = Date.now();
      backoff = FIRST_BACKOFF_MS; // the server talks to us: the next drop starts afresh
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        console.warn("vitrine: bad frame from the room", err);
        return;
      }
      deliverFrame(Array.isArray(data) ? data : [data]);
    });
    sock.addEventListener("error", function () {
      // A close event follows; some browsers are slow to send it for a refused handshake.
      if (sock === ws && sock.readyState !== 1) lost(sock, undefined, opened);
    });
    sock.addEventListener("close", function (event) {
      lost(sock, event.code, opened);
    });
  }

  function retryNow() {
    if (stopped || suspended || ws) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    backoff = FIRST_BACKOFF_MS;
    open();
  }

  function onOnline() {
    retryNow();
  }
  function onPageHide(event) {
    if (stopped || !event.persisted) return;
    // An open websocket keeps the page out of the back/forward cache: let go of it.
    suspended = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    var sock = ws;
    ws = null;
    stopPing();
    if (feed) feed.stop();
    if (sock) {
      try {
        sock.close(1000);
      } catch (err) {
        /* already closed */
      }
    }
  }
  function onPageShow(event) {
    if (!event.persisted || !suspended || stopped) return;
    suspended = false;
    backoff = FIRST_BACKOFF_MS;
    open();
  }
  window.addEventListener("online", onOnline);
  window.addEventListener("pagehide", onPageHide);
  window.addEventListener("pageshow", onPageShow);
  // The video went over HLS: the room goes to the feed too (the socket is let go of).
  function onPath() {
    if (!feed || !onHls() || path === "feed" || stopped) return;
    var sock = ws;
    ws = null;
    stopPing();
    if (sock) {
      try {
        sock.close(1000);
      } catch (err) {
        /* already closed */
      }
    }
    toFeed();
  }
  document.addEventListener("vitrine:path", onPath);

  function close() {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    stopPing();
    window.removeEventListener("online", onOnline);
    window.removeEventListener("pagehide", onPageHide);
    window.removeEventListener("pageshow", onPageShow);
    document.removeEventListener("vitrine:path", onPath);
    if (feed) feed.stop();
    var sock = ws;
    ws = null;
    if (sock) {
      try {
        sock.close(1000);
      } catch (err) {
        /* already closed */
      }
    }
    setState("closed");
  }

  setPath("socket");
  open();

  return {
    send: function (obj) {
      if (path === "feed" && feed && !(ws && ws.readyState === 1)) return feed.send(obj);
      return sendOn(ws, obj);
    },
    close: close,
    retryNow: retryNow,
    state: function () {
      return state;
    }
  };
}

// The page's words as before the split into modules, for the browser console and the
// browser tests that measure a page's longest texts (tests/test_ui_defects.py).
window.VitrineRoom = { connect: connect, format: format, plural: plural, clock: clock };
