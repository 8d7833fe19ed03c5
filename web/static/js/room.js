// The live room's websocket (docs/protocol.md), shared by the show page and the moderation panel.
// It says hello, keeps the connection alive with pings, hands every message of the
// server's frames (JSON arrays) to onMessage, and reconnects by itself with a back-off
// (1 s, 2 s, 4 s... at most 15 s, plus jitter), except after a ban. It shows no text of
// its own.
//
//   import { connect } from "./room.js";
//   var room = connect("/ws/shows/7", {
//     name: "Ana",                       // or a function returning the name (or null)
//     onMessage: function (msg) {},      // each message object, in order
//     onState: function (state) {}       // connecting, open, reconnecting, closed
//   });
//   room.send({type: "chat", text: "Hi"}); // false (and dropped) while not open
//   room.close();
import { clock, format, plural } from "./words.js";

var PING_MS = 25000;
var SILENT_MS = 60000; // nothing at all from the server this long: the connection is dead
var FIRST_BACKOFF_MS = 1000;
var MAX_BACKOFF_MS = 15000;

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
    var wait = backoff + Math.random() * Math.min(1000, backoff * 0.3);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      open();
    }, wait);
  }

  // The connection is gone: forget it and try again (unless banned or stopped).
  function lost(sock, code) {
    if (sock !== ws) return;
    ws = null;
    stopPing();
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
    setState("reconnecting");
    scheduleRetry();
  }

  function open() {
    if (stopped || suspended || ws) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    banned = false;
    setState(failedOnce ? "reconnecting" : "connecting");
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    var sock;
    try {
      sock = new WebSocket(proto + window.location.host + url);
    } catch (err) {
      console.warn("vitrine: websocket refused", err);
      failedOnce = true;
      setState("reconnecting");
      scheduleRetry();
      return;
    }
    ws = sock;
    sock.addEventListener("open", function () {
      if (sock !== ws) return;
      lastHeard = Date.now();
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
      if (!Array.isArray(data)) data = [data];
      for (var i = 0; i < data.length; i++) {
        var m = data[i];
        if (m && m.type === "notice" && m.code === "banned") banned = true;
        deliver(m);
      }
    });
    sock.addEventListener("error", function () {
      // A close event follows; some browsers are slow to send it for a refused handshake.
      if (sock === ws && sock.readyState !== 1) lost(sock);
    });
    sock.addEventListener("close", function (event) {
      lost(sock, event.code);
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

  function close() {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    stopPing();
    window.removeEventListener("online", onOnline);
    window.removeEventListener("pagehide", onPageHide);
    window.removeEventListener("pageshow", onPageShow);
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

  open();

  return {
    send: function (obj) {
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
