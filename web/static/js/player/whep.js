// The live player's WebRTC path: a WHEP session, media on the video, retries with a back-off.
import { show } from "../dom.js";
import { connectionState, deleteSession, postSdp, preferCodec, waitForIce } from "../whip.js";
import { hlsPossible } from "./hls.js";

var ICE_WAIT_MS = 2000;
var DISCONNECT_GRACE_MS = 3000;
var CONNECT_TIMEOUT_MS = 15000;
// Not connected this long after the answer (UDP blocked, say): HLS instead, if it exists.
var ICE_FALLBACK_MS = 4000;
export var FIRST_BACKOFF_MS = 1000;
var MAX_BACKOFF_MS = 8000;

// p: the player's shared state (player.js); p.stage and p.poller are its other parts.
export function whep(p) {
  var d = p.d;
  var video = p.video;

  function onVideoReady() {
    if (!p.pc || p.stopped) return;
    var started = !p.playing;
    show(video);
    if (p.els.stage) p.els.stage.classList.add("has-video");
    p.playing = true;
    p.everPlayed = true;
    p.backoff = FIRST_BACKOFF_MS;
    clearTimeout(p.connectTimer);
    if (p.status === "live" && p.publishing === false) {
      // Media still flowing from before the host dropped: keep the notice up.
      p.stage.says("reconnecting", d.msgReconnecting);
    } else {
      p.stage.setState("playing");
      p.stage.hideOverlay();
    }
    if (started) {
      // The count known so far was taken before this session was up (it showed
      // "0 watching" until the next poll): show none until the server, which counts a
      // viewer once connected, tells the count with this one in it.
      p.viewers = null;
      p.poller.poll();
    }
    p.stage.renderTop();
    p.stage.renderUnmute();
  }

  // Closes the current connection (and its WHEP session). The video element keeps its last
  // picture under the overlay until new media arrives.
  function teardown() {
    p.gen++;
    clearTimeout(p.graceTimer);
    clearTimeout(p.connectTimer);
    p.graceTimer = p.connectTimer = null;
    p.playing = false;
    p.flowSince = 0;
    var old = p.pc;
    p.pc = null;
    deleteSession(p.sessionUrl, null, false);
    p.sessionUrl = null;
    if (old) {
      try {
        old.close();
      } catch (err) {
        /* already closed */
      }
    }
    p.stage.renderTop();
    p.stage.renderUnmute();
  }

  function attach(conn) {
    // One stream with the receivers' tracks, whatever streams the server announced.
    var tracks = conn.getReceivers().map(function (r) { return r.track; }).filter(Boolean);
    if (!tracks.length) return;
    video.srcObject = new MediaStream(tracks);
    p.stage.tryPlay();
  }

  async function connect() {
    if (p.stopped || p.suspended || p.pc || p.path === "hls") return;
    if (p.hlsFirst) {
      p.hls.start();
      return;
    }
    clearTimeout(p.retryTimer);
    p.retryTimer = null;
    var my = ++p.gen;
    if (p.everPlayed) p.stage.says("reconnecting", d.msgReconnecting);
    else p.stage.says("connecting", d.msgConnecting);
    p.stage.renderTop();
    var conn;
    try {
      conn = new RTCPeerConnection({ iceServers: p.iceServers });
      p.pc = conn;
      var attached = false;
      conn.addTransceiver("audio", { direction: "recvonly" });
      var vtx = conn.addTransceiver("video", { direction: "recvonly" });
      preferCodec(vtx, "video/H264");
      conn.addEventListener("track", function () {
        if (conn !== p.pc || attached) return;
        attached = true;
        // The track events of one answer arrive together: attach once they all have.
        setTimeout(function () { if (conn === p.pc) attach(conn); }, 0);
      });
      var onChange = function () { onPcState(conn); };
      conn.addEventListener("connectionstatechange", onChange);
      conn.addEventListener("iceconnectionstatechange", onChange);
      await conn.setLocalDescription(await conn.createOffer());
      await waitForIce(conn, ICE_WAIT_MS);
      if (my !== p.gen) return;
      var res = await postSdp(d.whepUrl, conn.localDescription.sdp, {});
      if (my !== p.gen) {
        deleteSession(res.location, null, false); // given up on meanwhile
        return;
      }
      p.sessionUrl = res.location;
      await conn.setRemoteDescription({ type: "answer", sdp: res.answer });
      p.lastFailure = null;
      setTimeout(function () {
        if (conn === p.pc && connectionState(conn) !== "connected" && !p.playing && hlsPossible(p)) {
          p.hls.start();
        }
      }, ICE_FALLBACK_MS);
      p.connectTimer = setTimeout(function () {
        if (conn === p.pc && connectionState(conn) !== "connected" && !p.playing) {
          failed(new Error("no connection"));
        }
      }, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (my !== p.gen) return;
      if (err && (err.status === 503 || err.status === 429) && hlsPossible(p)) {
        p.hls.start(); // the relay is full: the show goes on over HLS
        return;
      }
      failed(err);
    }
  }

  function onPcState(conn) {
    if (conn !== p.pc || p.stopped) return;
    var s = connectionState(conn);
    if (s === "connected") {
      clearTimeout(p.graceTimer);
      p.graceTimer = null;
      clearTimeout(p.connectTimer);
      p.connectTimer = null;
    } else if (s === "disconnected") {
      // Often a short network blip that heals by itself: give it a few seconds.
      if (!p.graceTimer) {
        p.graceTimer = setTimeout(function () {
          p.graceTimer = null;
          if (conn === p.pc && connectionState(conn) !== "connected") failed(new Error("disconnected"));
        }, DISCONNECT_GRACE_MS);
      }
    } else if (s === "failed" || s === "closed") {
      failed(new Error("connection " + s));
    }
  }

  function failed(err) {
    console.warn("vitrine: live video interrupted", err);
    p.lastFailure = err && err.status === 409 ? "notlive" : "error";
    teardown();
    if (p.stopped || p.suspended) return;
    p.stage.says("reconnecting", d.msgReconnecting);
    p.stage.renderTop();
    scheduleRetry();
  }

  // Tries again after 1 s, 2 s, 4 s, then every 8 s, as long as the show is live. While the
  // status says the host is away, the status polls take over: they connect when the host is
  // back on air.
  function scheduleRetry() {
    if (p.stopped || p.retryTimer) return;
    var wait = p.backoff;
    p.backoff = Math.min(p.backoff * 2, MAX_BACKOFF_MS);
    p.retryTimer = setTimeout(function () {
      p.retryTimer = null;
      if (p.stopped || p.suspended || p.pc) return;
      if (p.status === "live" && p.publishing) connect();
      else p.stage.waiting();
    }, wait);
  }

  function wire() {
    video.addEventListener("loadeddata", onVideoReady);
    video.addEventListener("playing", onVideoReady);
  }

  return { connect: connect, failed: failed, teardown: teardown, wire: wire };
}
