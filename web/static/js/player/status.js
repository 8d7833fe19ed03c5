// The live player's status polls: play when the host is on air, replace a stuck session, end.
import { hide } from "../dom.js";
import { fetchStatus } from "../showstatus.js";

var WAIT_POLL_MS = 3000; // status polls while waiting for the host
var LIVE_POLL_MS = 5000; // status polls while playing (viewer count, end of the show)
var STALL_MS = 20000; // no video bytes at all this long while the host is on air: reconnect

// p: the player's shared state (player.js); p.stage and p.whep are its other parts; it is p.poller.
export function showStatus(p) {
  var d = p.d;
  var video = p.video;

  function end() {
    if (p.stopped) return;
    p.stopped = true;
    clearTimeout(p.retryTimer);
    clearTimeout(p.pollTimer);
    p.retryTimer = p.pollTimer = null;
    p.whep.teardown();
    p.hls.stop();
    p.needsTap = false;
    try {
      video.pause();
    } catch (err) {
      /* nothing to pause */
    }
    video.srcObject = null;
    hide(video);
    if (p.els.stage) p.els.stage.classList.remove("has-video");
    hide(p.els.unmute);
    hide(p.els.topBar);
    p.stage.hideSchedule();
    if (p.els.overlay) p.els.overlay.querySelectorAll(".badge").forEach(hide);
    p.stage.showOverlay(d.msgEnded);
    p.stage.setState("ended");
  }

  function apply(s) {
    p.status = s.status;
    p.publishing = !!s.publishing;
    var n = Number(s.viewers);
    p.viewers = isFinite(n) && s.viewers !== null && s.viewers !== undefined ? n : null;
    if (p.status === "ended") {
      end();
      return;
    }
    if (p.status === "live") p.stage.hideSchedule();
    var onAir = p.status === "live" && p.publishing;
    if (!p.pc) {
      if (onAir) {
        // After a 409 the host is back: do not wait for the back-off.
        if (!p.retryTimer || p.lastFailure === "notlive") p.whep.connect();
      } else if (!p.retryTimer) {
        p.stage.waiting();
      }
    } else if (p.playing) {
      if (!onAir && p.state === "playing") {
        // The host's connection dropped: this session resumes when the host is back.
        p.stage.says("reconnecting", d.msgReconnecting);
      } else if (onAir && p.state === "reconnecting") {
        p.stage.resumed();
      }
    }
    p.stage.renderTop();
  }

  // A short stall is normal (the host's phone reconnecting: the session resumes by itself),
  // but a session that gets nothing for long while the host is on air is stuck: replace it.
  async function checkFlow() {
    var conn = p.pc;
    if (!conn || !p.playing || !p.publishing || !conn.getStats) {
      p.flowSince = 0;
      return;
    }
    try {
      var bytes = 0;
      (await conn.getStats()).forEach(function (r) {
        if (r.type === "inbound-rtp" && (r.kind || r.mediaType) === "video") bytes += r.bytesReceived || 0;
      });
      if (conn !== p.pc) return;
      var now = Date.now();
      if (!p.flowSince || bytes !== p.flowBytes) {
        p.flowBytes = bytes;
        p.flowSince = now;
      } else if (now - p.flowSince > STALL_MS) {
        p.whep.failed(new Error("no video for " + STALL_MS + " ms"));
      }
    } catch (err) {
      /* no statistics: rely on the connection state alone */
    }
  }

  async function poll() {
    clearTimeout(p.pollTimer);
    p.pollTimer = null;
    if (p.stopped || p.suspended) return;
    try {
      var s = await fetchStatus(d.statusUrl);
      if (s && !p.stopped && !p.suspended) apply(s);
      if (!p.stopped && !p.suspended) await checkFlow();
    } catch (err) {
      /* offline for now: ask again later */
    }
    if (p.stopped || p.suspended) return;
    clearTimeout(p.pollTimer);
    p.pollTimer = setTimeout(poll, p.playing && p.state === "playing" ? LIVE_POLL_MS : WAIT_POLL_MS);
  }

  return { poll: poll };
}
