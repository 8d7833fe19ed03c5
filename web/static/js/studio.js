// The studio: the seller's phone camera, published to Vitrine with WHIP, with the show's controls.
// This module holds the studio's shared state and wires its parts: studio/camera.js,
// studio/quality.js, studio/orientation.js, studio/publisher.js (WHIP), studio/ending.js
// (status and end), studio/wakelock.js, studio/overlay.js (chat, hearts and the line-up over
// the preview) and studio/sheet.js (the moderation sheet on a phone). Everything it needs
// (endpoints, stream key, ICE servers, translated texts) comes from the data-* attributes
// of #studio. For browser tests,
// body[data-studio-state] always holds the state: offline, connecting, live, reconnecting
// or ended.
import { $, noticeLine, show } from "./dom.js";
import { iceServersFrom } from "./whip.js";
import { camera } from "./studio/camera.js";
import { ending } from "./studio/ending.js";
import { followOrientation } from "./studio/orientation.js";
import { overlay } from "./studio/overlay.js";
import { FIRST_BACKOFF_MS, publisher } from "./studio/publisher.js";
import { changeQuality, savedQuality } from "./studio/quality.js";
import { moderationSheet } from "./studio/sheet.js";
import { screenLock } from "./studio/wakelock.js";

// The endpoints are used on this page's origin (the page's CSP only allows 'self'), even
// when the server wrote them as absolute URLs with another public address.
function local(url) {
  if (!url) return url;
  try {
    var u = new URL(url, window.location.href);
    return u.origin === window.location.origin ? u.href : u.pathname + u.search;
  } catch (err) {
    return url;
  }
}

function start(root) {
  var d = root.dataset;
  var els = {
    preview: $("preview"),
    badge: $("studio-badge"),
    viewers: $("studio-viewers"),
    notice: $("studio-notice"),
    insecure: $("studio-insecure"),
    denied: $("studio-denied"),
    retryWrap: $("camera-retry-wrap"),
    retry: $("camera-retry"),
    ended: $("studio-ended"),
    controls: $("studio-controls"),
    goLive: $("go-live"),
    switchCam: $("switch-camera"),
    mute: $("mute"),
    muteText: $("mute-text"),
    quality: $("quality")
  };
  var s = {
    d: d,
    els: els,
    whipUrl: local(d.whipUrl),
    statusUrl: local(d.statusUrl),
    endUrl: local(d.endUrl),
    streamKey: d.streamKey || "",
    iceServers: iceServersFrom(d.iceServers),
    notice: noticeLine(els.notice, 0),
    state: null,
    stream: null, // the camera: one video track and (usually) one audio track
    facing: "user",
    qualityKey: "720",
    micMuted: false,
    cameraBusy: false, // the camera is being (re)opened: track 'ended' events are expected
    recoverWhenVisible: false,
    pc: null,
    audioTx: null,
    videoTx: null,
    sessionUrl: null, // the WHIP session (Location of the last successful POST)
    attempt: 0, // publishing generation: stale async work compares against it
    wantLive: false, // Go live was pressed and the show has not ended
    ended: false,
    backoff: FIRST_BACKOFF_MS,
    retryTimer: null,
    connectTimer: null
  };
  var wake = screenLock(function () {
    return s.wantLive && !s.ended;
  });

  s.setState = function (state) {
    if (s.state === state) return;
    s.state = state;
    document.body.dataset.studioState = state;
    if (els.badge) {
      els.badge.dataset.state = state;
      els.badge.textContent =
        {
          offline: d.msgOffline,
          connecting: d.msgConnecting,
          live: d.msgLive,
          reconnecting: d.msgReconnecting,
          ended: d.msgEnded
        }[state] || "";
    }
    if (state === "connecting" || state === "live" || state === "reconnecting") wake.hold();
    else wake.release();
    s.updateControls();
  };

  s.updateControls = function () {
    if (els.goLive) {
      els.goLive.textContent = s.wantLive ? d.msgEndShow : d.msgGoLive;
      els.goLive.classList.toggle("is-live", s.wantLive);
      els.goLive.disabled = s.ended || (!s.wantLive && (!s.stream || !window.RTCPeerConnection));
    }
    if (els.mute) els.mute.disabled = s.ended || !s.camera.audioTrack();
    if (els.switchCam) els.switchCam.disabled = s.ended || !s.stream || s.cameraBusy;
    if (els.quality) els.quality.disabled = s.ended;
  };

  s.camera = camera(s);
  s.publisher = publisher(s);
  s.ending = ending(s);
  s.overlay = overlay(d);

  function wire() {
    if (els.goLive) {
      els.goLive.addEventListener("click", function () {
        if (s.wantLive) s.ending.endShow();
        else s.publisher.goLive();
      });
    }
    if (els.switchCam) els.switchCam.addEventListener("click", s.camera.switchCamera);
    if (els.mute) els.mute.addEventListener("click", s.camera.toggleMute);
    if (els.quality) els.quality.addEventListener("change", function () { changeQuality(s); });
    if (els.retry) els.retry.addEventListener("click", s.camera.start);

    window.addEventListener("online", function () {
      if (!s.wantLive || s.ended) return;
      s.notice(null);
      if (s.state !== "live") {
        s.backoff = FIRST_BACKOFF_MS;
        s.publisher.publish(); // the network is back: do not wait for the back-off
      }
    });
    window.addEventListener("offline", function () {
      if (s.wantLive && !s.ended) s.notice(d.msgOfflineNetwork);
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState !== "visible" || s.ended) return;
      if (s.wantLive) wake.hold();
      if (s.recoverWhenVisible) {
        s.recoverWhenVisible = false;
        s.camera.recoverEndedTracks();
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (!s.wantLive || s.ended) return;
      event.preventDefault(); // leaving the page stops the show's video
      event.returnValue = "";
    });
    window.addEventListener("pagehide", function () {
      if (s.sessionUrl && !s.ended) s.publisher.leave(true);
    });
  }

  moderationSheet();
  if (d.showStatus === "ended") {
    s.ended = true;
    s.setState("ended");
    return;
  }
  s.qualityKey = savedQuality();
  if (els.quality) els.quality.value = s.qualityKey;
  s.setState("offline");
  s.camera.renderMute();
  wire();
  s.overlay.start();
  followOrientation(s);
  s.ending.poll();
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    show(els.insecure);
    s.updateControls();
    return;
  }
  if (!window.RTCPeerConnection) s.notice(d.msgNoWebrtc);
  s.camera.start();
}

var root = document.getElementById("studio");
if (root) start(root);
