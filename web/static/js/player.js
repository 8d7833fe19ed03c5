// Vitrine player: plays a live show on its page with WHEP (WebRTC), muted first as browsers
// require, with a button to turn the sound on. The endpoints and every text it shows
// (already translated) come from the data-* attributes of <article class="show">. For
// browser tests, body[data-player-state] holds the state: waiting, connecting, playing,
// reconnecting, ended or unsupported.
"use strict";

(function () {
  var root = document.querySelector("article.show[data-whep-url]");
  var video = document.getElementById("player");
  if (!root || !video) return;
  var d = root.dataset;
  var rtc = window.VitrineWebRTC;

  var WAIT_POLL_MS = 3000; // status polls while waiting for the host
  var LIVE_POLL_MS = 5000; // status polls while playing (viewer count, end of the show)
  var ICE_WAIT_MS = 2000;
  var DISCONNECT_GRACE_MS = 3000;
  var CONNECT_TIMEOUT_MS = 15000;
  var FIRST_BACKOFF_MS = 1000;
  var MAX_BACKOFF_MS = 8000;
  var STALL_MS = 20000; // no video bytes at all this long while the host is on air: reconnect

  function $(id) {
    return document.getElementById(id);
  }
  var stage = $("stage");
  var overlay = $("stage-state");
  var message = $("stage-message");
  var unmute = $("unmute");
  var topBar = $("stage-top");
  var viewersEl = $("stage-viewers");
  var unmuteText = unmute ? unmute.textContent : "";

  var iceServers = [];
  try {
    var parsed = JSON.parse(d.iceServers || "[]");
    if (Array.isArray(parsed)) iceServers = parsed;
  } catch (err) {
    console.warn("vitrine: bad data-ice-servers", err);
  }

  var state = null;
  var status = d.status; // scheduled | live | ended, as last known
  var publishing = false;
  var viewers = null;
  var pc = null;
  var sessionUrl = null; // the WHEP session (Location of the last successful POST)
  var gen = 0; // connection generation: stale async work compares against it
  var playing = false; // media arrived on the current connection
  var everPlayed = false;
  var needsTap = false; // the browser refused to start playback without a tap
  var lastFailure = null; // "notlive" (409) or "error"
  var backoff = FIRST_BACKOFF_MS;
  var retryTimer = null;
  var pollTimer = null;
  var graceTimer = null;
  var connectTimer = null;
  var flowBytes = -1; // video bytes received, as last measured
  var flowSince = 0; // when flowBytes last changed (0: not measuring)
  var stopped = false; // the show has ended (or cannot be played here)
  var suspended = false; // the page went away (back/forward cache)

  function show(el) {
    if (el) el.hidden = false;
  }
  function hide(el) {
    if (el) el.hidden = true;
  }

  function setState(s) {
    if (state === s) return;
    state = s;
    document.body.dataset.playerState = s;
  }

  function showOverlay(text) {
    if (!overlay) return;
    if (!message) {
      message = document.createElement("p");
      message.className = "stage-message";
      message.id = "stage-message";
      overlay.appendChild(message);
    }
    if (text) message.textContent = text;
    show(overlay);
  }

  function hideOverlay() {
    hide(overlay);
  }

  // Once the show is live, the "starts at" line and the countdown are past.
  function hideSchedule() {
    if (!overlay) return;
    overlay.querySelectorAll(".stage-when, .countdown").forEach(hide);
  }

  function renderTop() {
    if (!topBar) return;
    if (playing && state === "playing") {
      show(topBar);
      if (viewersEl) {
        viewersEl.textContent =
          viewers === null
            ? ""
            : window.VitrineRoom
              ? window.VitrineRoom.plural(d, "msgViewers", viewers)
              : (d.msgViewers || "{n}").replace("{n}", String(viewers));
      }
    } else {
      hide(topBar);
    }
  }

  function renderUnmute() {
    if (!unmute) return;
    if (needsTap && video.srcObject) {
      unmute.textContent = d.msgTapToPlay || unmuteText;
      show(unmute);
    } else if (playing && video.muted) {
      unmute.textContent = unmuteText;
      show(unmute);
    } else {
      hide(unmute);
    }
  }

  function waiting() {
    if (everPlayed) {
      setState("reconnecting");
      showOverlay(d.msgReconnecting);
    } else {
      setState("waiting");
      showOverlay(d.msgWaiting);
    }
    renderTop();
  }

  // ---- playback --------------------------------------------------------------------------

  function tryPlay() {
    var p = video.play();
    if (!p || !p.then) return;
    p.then(
      function () {
        needsTap = false;
        renderUnmute();
      },
      function (err) {
        // Autoplay refused (e.g. battery saving): the viewer starts it with a tap.
        console.debug("vitrine: play() refused", err);
        if (err && err.name === "AbortError") return; // a newer source replaced this one
        needsTap = true;
        renderUnmute();
      }
    );
  }

  function onVideoReady() {
    if (!pc || stopped) return;
    var started = !playing;
    show(video);
    if (stage) stage.classList.add("has-video");
    playing = true;
    everPlayed = true;
    backoff = FIRST_BACKOFF_MS;
    clearTimeout(connectTimer);
    if (status === "live" && publishing === false) {
      // Media still flowing from before the host dropped: keep the notice up.
      setState("reconnecting");
      showOverlay(d.msgReconnecting);
    } else {
      setState("playing");
      hideOverlay();
    }
    if (started) {
      // The count known so far was taken before this session was up (it showed
      // "0 watching" until the next poll): show none until the server, which counts a
      // viewer once connected, tells the count with this one in it.
      viewers = null;
      poll();
    }
    renderTop();
    renderUnmute();
  }

  function resumed() {
    setState("playing");
    hideOverlay();
    renderTop();
    renderUnmute();
  }

  video.addEventListener("loadeddata", onVideoReady);
  video.addEventListener("playing", onVideoReady);

  if (unmute) {
    unmute.addEventListener("click", function () {
      needsTap = false;
      hide(unmute);
      video.muted = false;
      var p = video.play();
      if (!p || !p.then) return;
      p.then(renderUnmute, function (err) {
        // Sound refused after all: keep the picture going, muted, and offer the button again.
        console.debug("vitrine: unmuted play() refused", err);
        video.muted = true;
        tryPlay();
        renderUnmute();
      });
    });
  }

  // ---- WHEP connection -------------------------------------------------------------------

  function pcState(conn) {
    if (conn.connectionState) return conn.connectionState;
    var ice = conn.iceConnectionState; // browsers without connectionState
    return ice === "completed" ? "connected" : ice === "checking" ? "connecting" : ice;
  }

  function leave(url, keepalive) {
    if (!url) return;
    fetch(url, { method: "DELETE", credentials: "same-origin", keepalive: !!keepalive }).catch(
      function () {}
    );
  }

  // Closes the current connection (and its WHEP session). The video element keeps its last
  // picture under the overlay until new media arrives.
  function teardown() {
    gen++;
    clearTimeout(graceTimer);
    clearTimeout(connectTimer);
    graceTimer = connectTimer = null;
    playing = false;
    flowSince = 0;
    var old = pc;
    pc = null;
    leave(sessionUrl, false);
    sessionUrl = null;
    if (old) {
      try {
        old.close();
      } catch (err) {
        /* already closed */
      }
    }
    renderTop();
    renderUnmute();
  }

  function attach(conn) {
    // One stream with the receivers' tracks, whatever streams the server announced.
    var tracks = conn.getReceivers().map(function (r) { return r.track; }).filter(Boolean);
    if (!tracks.length) return;
    video.srcObject = new MediaStream(tracks);
    tryPlay();
  }

  async function connect() {
    if (stopped || suspended || pc) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    var my = ++gen;
    if (everPlayed) {
      setState("reconnecting");
      showOverlay(d.msgReconnecting);
    } else {
      setState("connecting");
      showOverlay(d.msgConnecting);
    }
    renderTop();
    var conn;
    try {
      conn = new RTCPeerConnection({ iceServers: iceServers });
      pc = conn;
      var attached = false;
      conn.addTransceiver("audio", { direction: "recvonly" });
      var vtx = conn.addTransceiver("video", { direction: "recvonly" });
      rtc.preferCodec(vtx, "video/H264");
      conn.addEventListener("track", function () {
        if (conn !== pc || attached) return;
        attached = true;
        // The track events of one answer arrive together: attach once they all have.
        setTimeout(function () { if (conn === pc) attach(conn); }, 0);
      });
      var onChange = function () { onPcState(conn); };
      conn.addEventListener("connectionstatechange", onChange);
      conn.addEventListener("iceconnectionstatechange", onChange);
      await conn.setLocalDescription(await conn.createOffer());
      await rtc.waitForIce(conn, ICE_WAIT_MS);
      if (my !== gen) return;
      var res = await rtc.postSdp(d.whepUrl, conn.localDescription.sdp, {});
      if (my !== gen) {
        leave(res.location, false); // given up on meanwhile
        return;
      }
      sessionUrl = res.location;
      await conn.setRemoteDescription({ type: "answer", sdp: res.answer });
      lastFailure = null;
      connectTimer = setTimeout(function () {
        if (conn === pc && pcState(conn) !== "connected" && !playing) failed(new Error("no connection"));
      }, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (my === gen) failed(err);
    }
  }

  function onPcState(conn) {
    if (conn !== pc || stopped) return;
    var s = pcState(conn);
    if (s === "connected") {
      clearTimeout(graceTimer);
      graceTimer = null;
      clearTimeout(connectTimer);
      connectTimer = null;
    } else if (s === "disconnected") {
      // Often a short network blip that heals by itself: give it a few seconds.
      if (!graceTimer) {
        graceTimer = setTimeout(function () {
          graceTimer = null;
          if (conn === pc && pcState(conn) !== "connected") failed(new Error("disconnected"));
        }, DISCONNECT_GRACE_MS);
      }
    } else if (s === "failed" || s === "closed") {
      failed(new Error("connection " + s));
    }
  }

  function failed(err) {
    console.warn("vitrine: live video interrupted", err);
    lastFailure = err && err.status === 409 ? "notlive" : "error";
    teardown();
    if (stopped || suspended) return;
    setState("reconnecting");
    showOverlay(d.msgReconnecting);
    renderTop();
    scheduleRetry();
  }

  // Tries again after 1 s, 2 s, 4 s, then every 8 s, as long as the show is live. While the
  // status says the host is away, the status polls take over: they connect when the host is
  // back on air.
  function scheduleRetry() {
    if (stopped || retryTimer) return;
    var wait = backoff;
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (stopped || suspended || pc) return;
      if (status === "live" && publishing) connect();
      else waiting();
    }, wait);
  }

  // ---- show status -----------------------------------------------------------------------

  function end() {
    if (stopped) return;
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(pollTimer);
    retryTimer = pollTimer = null;
    teardown();
    needsTap = false;
    try {
      video.pause();
    } catch (err) {
      /* nothing to pause */
    }
    video.srcObject = null;
    hide(video);
    if (stage) stage.classList.remove("has-video");
    hide(unmute);
    hide(topBar);
    hideSchedule();
    if (overlay) overlay.querySelectorAll(".badge").forEach(hide);
    showOverlay(d.msgEnded);
    setState("ended");
  }

  function applyStatus(s) {
    status = s.status;
    publishing = !!s.publishing;
    var n = Number(s.viewers);
    viewers = isFinite(n) && s.viewers !== null && s.viewers !== undefined ? n : null;
    if (status === "ended") {
      end();
      return;
    }
    if (status === "live") hideSchedule();
    var onAir = status === "live" && publishing;
    if (!pc) {
      if (onAir) {
        // After a 409 the host is back: do not wait for the back-off.
        if (!retryTimer || lastFailure === "notlive") connect();
      } else if (!retryTimer) {
        waiting();
      }
    } else if (playing) {
      if (!onAir && state === "playing") {
        // The host's connection dropped: this session resumes when the host is back.
        setState("reconnecting");
        showOverlay(d.msgReconnecting);
      } else if (onAir && state === "reconnecting") {
        resumed();
      }
    }
    renderTop();
  }

  // A short stall is normal (the host's phone reconnecting: the session resumes by itself),
  // but a session that gets nothing for long while the host is on air is stuck: replace it.
  async function checkFlow() {
    var conn = pc;
    if (!conn || !playing || !publishing || !conn.getStats) {
      flowSince = 0;
      return;
    }
    try {
      var bytes = 0;
      (await conn.getStats()).forEach(function (r) {
        if (r.type === "inbound-rtp" && (r.kind || r.mediaType) === "video") bytes += r.bytesReceived || 0;
      });
      if (conn !== pc) return;
      var now = Date.now();
      if (!flowSince || bytes !== flowBytes) {
        flowBytes = bytes;
        flowSince = now;
      } else if (now - flowSince > STALL_MS) {
        failed(new Error("no video for " + STALL_MS + " ms"));
      }
    } catch (err) {
      /* no statistics: rely on the connection state alone */
    }
  }

  async function poll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (stopped || suspended) return;
    try {
      var r = await fetch(d.statusUrl, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      });
      if (r.ok) {
        var s = await r.json();
        if (!stopped && !suspended) applyStatus(s);
      }
      if (!stopped && !suspended) await checkFlow();
    } catch (err) {
      /* offline for now: ask again later */
    }
    if (stopped || suspended) return;
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, playing && state === "playing" ? LIVE_POLL_MS : WAIT_POLL_MS);
  }

  // ---- start -----------------------------------------------------------------------------

  window.addEventListener("pagehide", function () {
    leave(sessionUrl, true); // keepalive: the request outlives the page
    sessionUrl = null;
    if (stopped) return;
    suspended = true;
    clearTimeout(retryTimer);
    clearTimeout(pollTimer);
    retryTimer = pollTimer = null;
    teardown();
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted || !suspended || stopped) return;
    suspended = false; // back from the back/forward cache
    backoff = FIRST_BACKOFF_MS;
    poll();
  });
  window.addEventListener("online", function () {
    if (stopped || suspended || pc) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    backoff = FIRST_BACKOFF_MS;
    poll();
  });

  if (status === "ended") {
    stopped = true;
    setState("ended");
    return;
  }
  if (!window.RTCPeerConnection || !rtc) {
    stopped = true;
    setState("unsupported");
    showOverlay(d.msgUnsupported);
    return;
  }
  // The live room says at once when the show goes live or ends (chat.js writes it on the
  // article): ask the server then, not at the next poll up to 3 s later, so viewers
  // waiting on the page play (and are counted) as soon as the show starts.
  if (window.MutationObserver) {
    new MutationObserver(function () {
      if (!stopped && !suspended) poll();
    }).observe(root, { attributes: true, attributeFilter: ["data-room-status"] });
  }

  setState(status === "live" ? "connecting" : "waiting");
  poll();
})();
