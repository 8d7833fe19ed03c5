// The live player: plays a show on its page with WHEP (WebRTC), muted first, sound on a tap.
// This module holds the player's shared state and wires its parts: player/stage.js (what
// the viewer sees), player/whep.js (the WebRTC session), player/status.js (the show's
// status). The endpoints and every text it shows (already translated) come from the data-*
// attributes of <article class="show">. For browser tests, body[data-player-state] holds
// the state: waiting, connecting, playing, reconnecting, ended or unsupported.
import { $ } from "./dom.js";
import { deleteSession, iceServersFrom } from "./whip.js";
import { stage } from "./player/stage.js";
import { showStatus } from "./player/status.js";
import { FIRST_BACKOFF_MS, whep } from "./player/whep.js";
import { hlsPlayer, hlsPossible, setPath } from "./player/hls.js";
import { guestVideo } from "./player/guest.js";

function start(root, video) {
  var d = root.dataset;
  var p = {
    d: d,
    root: root,
    video: video,
    els: {
      stage: $("stage"),
      overlay: $("stage-state"),
      message: $("stage-message"),
      unmute: $("unmute"),
      topBar: $("stage-top"),
      viewers: $("stage-viewers")
    },
    iceServers: iceServersFrom(d.iceServers),
    state: null,
    status: d.status, // scheduled | live | ended, as last known
    publishing: false,
    viewers: null,
    pc: null,
    sessionUrl: null, // the WHEP session (Location of the last successful POST)
    gen: 0, // connection generation: stale async work compares against it
    playing: false, // media arrived on the current connection
    everPlayed: false,
    needsTap: false, // the browser refused to start playback without a tap
    lastFailure: null, // "notlive" (409) or "error"
    backoff: FIRST_BACKOFF_MS,
    retryTimer: null,
    pollTimer: null,
    graceTimer: null,
    connectTimer: null,
    flowBytes: -1, // video bytes received, as last measured
    flowSince: 0, // when flowBytes last changed (0: not measuring)
    stopped: false, // the show has ended (or cannot be played here)
    path: "webrtc", // or "hls", for good once switched (player/hls.js)
    hlsFirst: false, // no WebRTC here, or the show is HLS only: HLS from the start
    suspended: false // the page went away (back/forward cache)
  };
  p.stage = stage(p);
  p.whep = whep(p);
  p.poller = showStatus(p);
  p.hls = hlsPlayer(p);
  p.whep.wire();
  p.hls.wire();
  p.stage.wire();
  p.guest = guestVideo(p); // the guest's video, while the stage has one
  p.guest.wire();

  window.addEventListener("pagehide", function () {
    deleteSession(p.sessionUrl, null, true); // keepalive: the request outlives the page
    p.sessionUrl = null;
    if (p.stopped) return;
    p.suspended = true;
    clearTimeout(p.retryTimer);
    clearTimeout(p.pollTimer);
    p.retryTimer = p.pollTimer = null;
    p.whep.teardown();
    p.hls.stop();
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted || !p.suspended || p.stopped) return;
    p.suspended = false; // back from the back/forward cache
    p.backoff = FIRST_BACKOFF_MS;
    p.hls.resume();
    p.poller.poll();
  });
  window.addEventListener("online", function () {
    if (p.stopped || p.suspended || p.pc) return;
    clearTimeout(p.retryTimer);
    p.retryTimer = null;
    p.backoff = FIRST_BACKOFF_MS;
    p.poller.poll();
  });

  if (p.status === "ended") {
    p.stopped = true;
    p.stage.setState("ended");
    return;
  }
  p.hlsFirst = (!window.RTCPeerConnection || d.hlsOnly === "1") && hlsPossible(p);
  // The KPI join (kpi.js, after this module) reports the path chosen at load.
  setPath(p.hlsFirst ? "hls" : "webrtc");
  if (!window.RTCPeerConnection && !p.hlsFirst) {
    p.stopped = true;
    p.stage.says("unsupported", d.msgUnsupported);
    return;
  }
  // The live room says at once when the show goes live or ends (chat.js writes it on the
  // article): ask the server then, not at the next poll up to 3 s later, so viewers
  // waiting on the page play (and are counted) as soon as the show starts.
  if (window.MutationObserver) {
    new MutationObserver(function () {
      if (!p.stopped && !p.suspended) p.poller.poll();
    }).observe(root, { attributes: true, attributeFilter: ["data-room-status"] });
  }

  p.stage.setState(p.status === "live" ? "connecting" : "waiting");
  p.poller.poll();
}

var root = document.querySelector("article.show[data-whep-url]");
var video = document.getElementById("player");
if (root && video) start(root, video);
