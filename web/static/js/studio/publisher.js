// The studio's publisher: the camera sent with WHIP, published again when the connection drops.
import { $, show } from "../dom.js";
import {
  connectionState,
  deleteSession,
  postSdp,
  preferCodec,
  simulcastEncodings,
  waitForIce
} from "../whip.js";
import { QUALITY, setBitrate } from "./quality.js";

var ICE_WAIT_MS = 2000;
var CONNECT_TIMEOUT_MS = 15000;
export var FIRST_BACKOFF_MS = 1000;
var MAX_BACKOFF_MS = 10000;

// s: the studio's shared state (studio.js); s.camera and s.ending are its other parts.
export function publisher(s) {
  var d = s.d;

  function closePc() {
    clearTimeout(s.connectTimer);
    s.connectTimer = null;
    var old = s.pc;
    s.pc = null;
    s.audioTx = null;
    s.videoTx = null;
    if (old) {
      try {
        old.close();
      } catch (err) {
        /* already closed */
      }
    }
  }

  function addTransceiver(conn, trackOrKind, encodings) {
    var init = { direction: "sendonly", streams: s.stream ? [s.stream] : [] };
    if (encodings) init.sendEncodings = encodings;
    try {
      return conn.addTransceiver(trackOrKind, init);
    } catch (err) {
      if (!encodings) throw err;
      delete init.sendEncodings; // browsers without sendEncodings: setParameters does it later
      return conn.addTransceiver(trackOrKind, init);
    }
  }

  async function replaceOnSender(tx, track) {
    if (!tx || !tx.sender || !track) return;
    try {
      await tx.sender.replaceTrack(track);
    } catch (err) {
      console.warn("vitrine: replaceTrack failed, publishing again", err);
      if (s.wantLive && !s.ended) publish();
    }
  }

  async function publish() {
    if (s.ended || !s.wantLive || !s.stream) return;
    clearTimeout(s.retryTimer);
    s.retryTimer = null;
    var my = ++s.attempt;
    closePc();
    s.setState(s.state === "offline" || s.state === "connecting" ? "connecting" : "reconnecting");
    var conn;
    try {
      conn = new RTCPeerConnection({ iceServers: s.iceServers });
      s.pc = conn;
      s.audioTx = addTransceiver(conn, s.camera.audioTrack() || "audio", null);
      // Simulcast layers (a browser that refuses several encodings gets one: the
      // fallback in addTransceiver); one layer when s.singleLayer (the guest's page).
      var q = QUALITY[s.qualityKey];
      s.videoTx = addTransceiver(
        conn,
        s.camera.videoTrack() || "video",
        s.singleLayer ? [{ maxBitrate: q.bitrate }] : simulcastEncodings(q.bitrate, q.height)
      );
      preferCodec(s.videoTx, "video/H264");
      var onChange = function () { onPcState(conn, my); };
      conn.addEventListener("connectionstatechange", onChange);
      conn.addEventListener("iceconnectionstatechange", onChange);
      await conn.setLocalDescription(await conn.createOffer());
      await waitForIce(conn, ICE_WAIT_MS);
      if (my !== s.attempt) return;
      var headers = { Authorization: "Bearer " + s.streamKey };
      var res = await postSdp(s.whipUrl, conn.localDescription.sdp, headers);
      if (my !== s.attempt) return; // a newer attempt took over (or the show ended)
      s.sessionUrl = res.location;
      await conn.setRemoteDescription({ type: "answer", sdp: res.answer });
      setBitrate(s);
      s.connectTimer = setTimeout(function () {
        if (conn === s.pc && connectionState(conn) !== "connected") {
          console.warn("vitrine: no media connection after " + CONNECT_TIMEOUT_MS + " ms");
          s.setState("reconnecting");
          scheduleRepublish();
        }
      }, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (my === s.attempt) publishFailed(err);
    }
  }

  function stopTrying() {
    s.wantLive = false;
    s.setState("offline");
    s.updateControls();
  }

  function publishFailed(err) {
    console.warn("vitrine: publishing failed", err);
    closePc();
    if (err && err.status === 401) {
      // Wrong stream key (it was probably rotated): retrying cannot help.
      stopTrying();
      s.notice(d.msgWrongKey);
      return;
    }
    if (err && err.status === 409) {
      s.ending.finish(d.msgShowEnded);
      return;
    }
    if (err && err.status === 507) {
      // Not enough disk to record the show: retrying cannot help until space is freed.
      stopTrying();
      show($("studio-disk"));
      return;
    }
    s.setState("reconnecting");
    if (navigator.onLine === false) s.notice(d.msgOfflineNetwork);
    scheduleRepublish();
  }

  function onPcState(conn, my) {
    if (conn !== s.pc || my !== s.attempt || s.ended) return;
    var state = connectionState(conn);
    if (state === "connected") {
      clearTimeout(s.connectTimer);
      clearTimeout(s.retryTimer);
      s.retryTimer = null;
      s.backoff = FIRST_BACKOFF_MS;
      s.notice(null);
      s.setState("live");
    } else if (state === "disconnected" || state === "failed") {
      s.setState("reconnecting");
      scheduleRepublish();
    }
  }

  // Publishes again with a fresh connection (the server has no ICE restart), after 1 s, 2 s,
  // 4 s... at most 10 s, as long as the show goes on.
  function scheduleRepublish() {
    if (s.ended || !s.wantLive || s.retryTimer) return;
    var wait = s.backoff;
    s.backoff = Math.min(s.backoff * 2, MAX_BACKOFF_MS);
    s.retryTimer = setTimeout(function () {
      s.retryTimer = null;
      if (s.pc && connectionState(s.pc) === "connected") {
        s.setState("live"); // a short disconnection that healed by itself
        return;
      }
      publish();
    }, wait);
  }

  function goLive() {
    if (s.ended || !s.stream || !window.RTCPeerConnection) return;
    s.wantLive = true;
    s.backoff = FIRST_BACKOFF_MS;
    s.notice(null);
    s.updateControls();
    publish();
  }

  // Leaves the WHIP session; never waits long for it: the server also notices a closed
  // connection.
  function leave(keepalive) {
    var url = s.sessionUrl;
    s.sessionUrl = null;
    if (!url) return Promise.resolve();
    var request = deleteSession(url, { Authorization: "Bearer " + s.streamKey }, keepalive);
    return Promise.race([request, new Promise(function (r) { setTimeout(r, 3000); })]);
  }

  return {
    goLive: goLive,
    publish: publish,
    replaceOnSender: replaceOnSender,
    closePc: closePc,
    leave: leave
  };
}
