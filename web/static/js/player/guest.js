// The guest's video beside the host's: shown while the room's stage says a guest is on.
// The stage ({guest, layout}) comes from GET /api/shows/<id>/stage at load and then from
// the room's `stage` messages (chat.js writes them on the article's data-stage-* attributes).
// The guest plays over its own WHEP session (/whep/<id>/guest) when the host plays over
// WebRTC, else over HLS (/hls/<id>/guest/index.m3u8). Layout by CSS: .stage.guest-side or
// .stage.guest-inset. For browser tests: body[data-guest-state] is off, connecting, playing.
import { connectionState, deleteSession, postSdp, waitForIce } from "../whip.js";
import { loadHlsJs, nativeHls } from "./hls.js";

var ICE_WAIT_MS = 2000;
var RETRY_MS = 2000;

// p: the player's shared state (player.js).
export function guestVideo(p) {
  var root = p.root;
  var showId = root.dataset.showId;
  var stageEl = p.els.stage;
  var video = null;
  var pc = null;
  var sessionUrl = null;
  var hls = null;
  var on = false;
  var gen = 0;
  var retry = null;

  function setState(state) {
    document.body.dataset.guestState = state;
  }

  function layout(name) {
    if (!stageEl) return;
    stageEl.classList.toggle("guest-side", on && name !== "inset");
    stageEl.classList.toggle("guest-inset", on && name === "inset");
  }

  function stop() {
    gen++;
    clearTimeout(retry);
    retry = null;
    if (pc) {
      try { pc.close(); } catch (err) { /* closed */ }
    }
    pc = null;
    deleteSession(sessionUrl, null, true);
    sessionUrl = null;
    if (hls) hls.destroy();
    hls = null;
    if (video) video.remove();
    video = null;
    setState("off");
  }

  function makeVideo() {
    video = document.createElement("video");
    video.id = "guest-video";
    video.className = "guest-video";
    video.playsInline = true;
    video.autoplay = true;
    video.muted = p.video.muted;
    video.addEventListener("playing", function () { setState("playing"); });
    p.video.insertAdjacentElement("afterend", video);
  }

  async function playWebrtc(my) {
    var conn = new RTCPeerConnection({ iceServers: p.iceServers });
    pc = conn;
    conn.addTransceiver("video", { direction: "recvonly" });
    conn.addTransceiver("audio", { direction: "recvonly" });
    var stream = new MediaStream();
    conn.addEventListener("track", function (event) {
      stream.addTrack(event.track);
      if (video && video.srcObject !== stream) video.srcObject = stream;
    });
    conn.addEventListener("connectionstatechange", function () {
      var state = connectionState(conn);
      if (conn === pc && on && (state === "failed" || state === "closed")) later();
    });
    await conn.setLocalDescription(await conn.createOffer());
    await waitForIce(conn, ICE_WAIT_MS);
    if (my !== gen) return;
    var res = await postSdp("/whep/" + showId + "/guest", conn.localDescription.sdp, {});
    if (my !== gen) {
      deleteSession(res.location, null, true);
      return;
    }
    sessionUrl = res.location;
    await conn.setRemoteDescription({ type: "answer", sdp: res.answer });
  }

  function playHls() {
    var url = "/hls/" + showId + "/guest/index.m3u8";
    var my = gen;
    if (nativeHls(video)) {
      video.src = url;
      return;
    }
    loadHlsJs()
      .then(function (Hls) {
        if (my !== gen || !video || !Hls || !Hls.isSupported()) return;
        // No worker: the page's CSP allows scripts from this origin only, not blob: workers.
        var engine = new Hls({ lowLatencyMode: true, enableWorker: false, backBufferLength: 30 });
        hls = engine;
        engine.on(Hls.Events.ERROR, function (_event, data) {
          if (!data || !data.fatal || engine !== hls) return;
          // The guest's rendition not cut yet, a blip: start the guest's video again shortly.
          console.warn("vitrine: the guest's HLS was interrupted", data.type, data.details);
          later();
        });
        engine.loadSource(url);
        engine.attachMedia(video);
      })
      .catch(function () { later(); });
  }

  function later() {
    if (!on || retry || p.stopped) return;
    retry = setTimeout(function () {
      retry = null;
      if (on) begin();
    }, RETRY_MS);
  }

  function begin() {
    stop();
    if (!on || p.stopped) return;
    var my = gen;
    setState("connecting");
    makeVideo();
    if (p.path === "hls" || p.hlsFirst || !window.RTCPeerConnection) {
      playHls();
      return;
    }
    playWebrtc(my).catch(function (err) {
      console.warn("vitrine: the guest's video failed", err);
      if (my === gen && err && err.status === 503) playHls(); // full: HLS for the guest too
      else if (my === gen) later();
    });
  }

  function apply(guest, name) {
    var was = on;
    on = !!guest && !p.stopped;
    layout(name);
    if (on && !was) begin();
    else if (!on && was) stop();
  }

  function fromAttributes() {
    apply(root.dataset.stageGuest === "1", root.dataset.stageLayout || "side");
  }

  function wire() {
    setState("off");
    p.video.addEventListener("volumechange", function () {
      if (video) video.muted = p.video.muted;
    });
    if (window.MutationObserver) {
      new MutationObserver(fromAttributes).observe(root, {
        attributes: true,
        attributeFilter: ["data-stage-guest", "data-stage-layout"]
      });
    }
    fetch("/api/shows/" + showId + "/stage", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (stage) {
        if (!stage || root.dataset.stageGuest !== undefined) return; // the room spoke first
        root.dataset.stageLayout = stage.layout || "side";
        root.dataset.stageGuest = stage.guest ? "1" : "";
      })
      .catch(function () {});
    window.addEventListener("pagehide", stop);
  }

  return { wire: wire, stop: stop };
}
