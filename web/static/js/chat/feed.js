// The live room over plain HTTP, for a page on no socket (docs/protocol.md: the feed,
// sending over HTTP): `hello` and everything the viewer sends go by POST to
// /api/rooms/<show>/say, whose answers hold what the room sent to this viewer alone; the
// room's broadcast frames come from long polls of /rooms/<show>/feed?after=<last number>.
// room.js decides when to use it, numbers the frames and skips what it has already seen.
//
//   var link = feedLink(7, {
//     frame: function (messages) {},   // an array of messages, in order
//     last: function () {},            // the last frame number seen, or null
//     name: function () {},            // the viewer's name for hello, or null
//     state: function (s) {},          // "open" once hello was answered, "reconnecting"
//     banned: function () {}           // a 403: do not come back
//   });
//   link.start(); link.send({type: "chat", text: "Hi"}); link.stop();

var PING_MS = 50000; // the room forgets a viewer on the feed silent for two minutes
var FIRST_BACKOFF_MS = 1000;
var MAX_BACKOFF_MS = 15000;

export function feedLink(show, h) {
  var readUrl = "/rooms/" + show + "/feed?after=";
  var sayUrl = "/api/rooms/" + show + "/say";
  var running = false;
  var gen = 0; // a new start() or stop() makes older requests' answers void
  var ctrl = null;
  var pingTimer = null;
  var welcomed = false;

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function post(obj) {
    return fetch(sayUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(obj),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      return r.json().then(
        function (body) {
          return { status: r.status, body: body || {} };
        },
        function () {
          return { status: r.status, body: {} };
        }
      );
    });
  }

  // What the room answered for this viewer alone; false when it must not go on.
  function answer(res, g) {
    if (g !== gen) return false;
    var msgs = res.body.messages;
    if (Array.isArray(msgs) && msgs.length) h.frame(msgs);
    if (res.status === 403) {
      running = false;
      h.banned();
      return false;
    }
    return true;
  }

  function hello(g) {
    return post({ type: "hello", v: 1, name: h.name() }).then(function (res) {
      if (!answer(res, g)) return false;
      if (res.status !== 200) throw new Error("hello: " + res.status);
      welcomed = true;
      h.state("open");
      return true;
    });
  }

  async function loop(g) {
    var backoff = FIRST_BACKOFF_MS;
    var needHello = true;
    while (running && g === gen) {
      try {
        if (needHello) {
          if (!(await hello(g))) return;
          needHello = false;
        }
        var last = h.last();
        if (last === null) {
          needHello = true;
          continue;
        }
        ctrl = new AbortController();
        var r = await fetch(readUrl + last, { signal: ctrl.signal, credentials: "omit" });
        if (!r.ok) throw new Error("feed: " + r.status);
        var body = await r.json();
        if (g !== gen) return;
        if (body.reset) {
          needHello = true; // frames no longer kept, or a restart: the state again
          continue;
        }
        var drawn = false;
        (body.frames || []).forEach(function (frame) {
          if (!Array.isArray(frame)) return;
          h.frame(frame);
          drawn = drawn || frame.some(function (m) {
            return m && m.type === "giveaway" && m.winner;
          });
        });
        // A draw: if this viewer won, the room holds a prize_won for it; ask now rather
        // than at the next ping, the winner has a limited time to claim.
        if (drawn) send({ type: "ping" });
        backoff = FIRST_BACKOFF_MS;
        // A long poll that ended with nothing may be a cache's copy (kept for a second):
        // asking again at once would get the same empty answer until it expires.
        if (!body.frames || body.frames.length === 0) await sleep(1000 + Math.random() * 500);
      } catch (err) {
        if (g !== gen || !running) return;
        welcomed = false;
        h.state("reconnecting");
        needHello = true;
        await sleep(backoff + Math.random() * Math.min(1000, backoff * 0.3));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  function send(obj) {
    if (!running || !welcomed) return false;
    var g = gen;
    post(obj)
      .then(function (res) {
        if (res.status !== 409) return answer(res, g);
        // The room forgot this viewer (idle, or a restart): hello again, then the message.
        return hello(g).then(function (ok) {
          return ok && post(obj).then(function (again) {
            return answer(again, g);
          });
        });
      })
      .catch(function (err) {
        console.warn("vitrine: sending to the room failed", err);
      });
    return true;
  }

  function start() {
    if (running) return;
    running = true;
    welcomed = false;
    gen++;
    loop(gen);
    pingTimer = setInterval(function () {
      send({ type: "ping" });
    }, PING_MS);
  }

  function stop() {
    running = false;
    welcomed = false;
    gen++;
    clearInterval(pingTimer);
    pingTimer = null;
    if (ctrl) ctrl.abort();
    ctrl = null;
  }

  return {
    start: start,
    stop: stop,
    send: send,
    running: function () {
      return running;
    }
  };
}
