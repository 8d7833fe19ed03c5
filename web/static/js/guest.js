// The guest's page: their camera, "Join the live" over WHIP with the guest link, and the chat.
// It reuses the studio's camera (studio/camera.js) and WHIP publisher (studio/publisher.js)
// with a state of the same shape; the link's token is the publisher's bearer key. The chat
// is read only. For browser tests, body[data-studio-state] holds the state: offline,
// connecting, live, reconnecting or ended.
import { $, noticeLine } from "./dom.js";
import { render } from "./messages.js";
import { connect } from "./room.js";
import { iceServersFrom } from "./whip.js";
import { camera } from "./studio/camera.js";
import { FIRST_BACKOFF_MS, publisher } from "./studio/publisher.js";

var CHAT_KEEP = 30;

function start(root) {
  var d = root.dataset;
  var els = {
    preview: $("preview"),
    badge: $("studio-badge"),
    notice: $("studio-notice"),
    denied: $("studio-denied"),
    retryWrap: $("camera-retry-wrap"),
    retry: $("camera-retry"),
    controls: $("studio-controls"),
    goLive: $("go-live"),
    switchCam: $("switch-camera"),
    mute: $("mute"),
    muteText: $("mute-text"),
    chat: $("guest-chat")
  };
  var s = {
    d: d,
    els: els,
    whipUrl: d.whipUrl,
    streamKey: d.streamKey || "",
    iceServers: iceServersFrom(d.iceServers),
    notice: noticeLine(els.notice, 0),
    state: null,
    stream: null,
    facing: "user",
    qualityKey: "540",
    // One layer: the guest's picture is the smaller one on viewers' screens, and the
    // replay is composed from what the relay recorded of it.
    singleLayer: true,
    micMuted: false,
    cameraBusy: false,
    recoverWhenVisible: false,
    pc: null,
    audioTx: null,
    videoTx: null,
    sessionUrl: null,
    attempt: 0,
    wantLive: false,
    ended: false,
    backoff: FIRST_BACKOFF_MS,
    retryTimer: null,
    connectTimer: null
  };
  var labels = { staff: d.msgStaff, question: d.msgQuestion };

  s.setState = function (state) {
    if (s.state === state) return;
    s.state = state;
    document.body.dataset.studioState = state;
    els.badge.dataset.state = state;
    els.badge.textContent =
      { offline: d.msgOffline, connecting: d.msgConnecting, live: d.msgLive,
        reconnecting: d.msgReconnecting, ended: d.msgEnded }[state] || "";
    s.updateControls();
  };
  s.updateControls = function () {
    els.goLive.textContent = s.wantLive ? d.msgEndShow : d.msgGoLive;
    els.goLive.classList.toggle("is-live", s.wantLive);
    els.goLive.disabled = s.ended || (!s.wantLive && (!s.stream || !window.RTCPeerConnection));
    els.mute.disabled = s.ended || !s.camera.audioTrack();
    els.switchCam.disabled = s.ended || !s.stream || s.cameraBusy;
  };
  // What studio/publisher.js calls when the server says the show cannot take the guest.
  s.ending = {
    finish: function (message) {
      s.wantLive = false;
      s.publisher.closePc();
      s.setState("offline");
      s.notice(message || null);
    }
  };
  s.camera = camera(s);
  s.publisher = publisher(s);

  async function leave() {
    s.wantLive = false;
    s.attempt++;
    clearTimeout(s.retryTimer);
    s.retryTimer = null;
    await s.publisher.leave(false);
    s.publisher.closePc();
    s.setState("offline");
  }

  function addMessage(m) {
    if (!m || !m.text) return;
    els.chat.appendChild(render(m, labels));
    while (els.chat.children.length > CHAT_KEEP) els.chat.removeChild(els.chat.firstChild);
  }

  connect(d.roomUrl, {
    onMessage: function (m) {
      if (m.type === "state") {
        els.chat.textContent = "";
        (m.messages || []).forEach(addMessage);
      } else if (m.type === "chat") {
        addMessage(m);
      } else if (m.type === "deleted") {
        var li = els.chat.querySelector('li[data-id="' + Number(m.id) + '"]');
        if (li) li.remove();
      } else if (m.type === "status" && m.status === "ended") {
        s.ended = true;
        leave().then(function () { s.camera.stop(); s.setState("ended"); });
      }
    }
  });

  els.goLive.addEventListener("click", function () {
    if (s.wantLive) leave();
    else s.publisher.goLive();
  });
  els.switchCam.addEventListener("click", s.camera.switchCamera);
  els.mute.addEventListener("click", s.camera.toggleMute);
  els.retry.addEventListener("click", s.camera.start);
  window.addEventListener("pagehide", function () {
    if (s.sessionUrl) s.publisher.leave(true);
  });

  if (d.showStatus === "ended") {
    s.ended = true;
    s.setState("ended");
    return;
  }
  s.setState("offline");
  s.camera.renderMute();
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    s.notice(d.msgNoWebrtc);
    return;
  }
  s.camera.start();
}

var root = document.getElementById("guest");
if (root) start(root);
