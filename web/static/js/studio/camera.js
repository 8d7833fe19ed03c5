// The studio's camera and microphone: opening, preview, switching, muting, taking them back.
import { hide, show } from "../dom.js";
import { AUDIO_CONSTRAINTS, setBitrate, videoConstraints } from "./quality.js";

function stopStream(stream) {
  if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
}

// s: the studio's shared state (studio.js); s.publisher hands new tracks to the connection.
export function camera(s) {
  var d = s.d;
  var els = s.els;

  function audioTrack() {
    return s.stream ? s.stream.getAudioTracks()[0] || null : null;
  }
  function videoTrack() {
    return s.stream ? s.stream.getVideoTracks()[0] || null : null;
  }

  function renderMute() {
    if (!els.mute) return;
    els.mute.setAttribute("aria-pressed", s.micMuted ? "true" : "false");
    els.mute.classList.toggle("is-off", s.micMuted);
    if (els.muteText) els.muteText.textContent = s.micMuted ? d.msgMicOff : d.msgMicOn;
  }

  function playPreview() {
    var p = els.preview.play();
    if (p && p.catch) p.catch(function () {});
  }

  function updateMirror() {
    // Mirror the preview for a camera that faces the seller (as a mirror does); viewers get
    // the image unmirrored. Laptop webcams often report no facingMode: they face the user.
    var v = videoTrack();
    var settings = v && v.getSettings ? v.getSettings() : {};
    var front = settings.facingMode ? settings.facingMode === "user" : s.facing === "user";
    els.preview.classList.toggle("mirror", front);
  }

  function attachPreview() {
    els.preview.srcObject = s.stream;
    playPreview();
    updateMirror();
  }

  function watchTrack(track) {
    track.addEventListener("ended", function () {
      // The system took the camera or the microphone away (another app, a phone call...).
      if (s.cameraBusy || s.ended || !s.stream || s.stream.getTracks().indexOf(track) < 0) return;
      console.warn("vitrine: " + track.kind + " track ended, reopening it");
      recoverTrack(track.kind);
    });
  }

  function failed(err) {
    console.warn("vitrine: camera failed", err);
    var name = err && err.name;
    hide(els.denied);
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      show(els.denied);
      s.notice(null);
    } else if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      s.notice(d.msgNoCamera);
    } else if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      s.notice(d.msgCameraBusy);
    } else {
      s.notice(d.msgCameraError);
    }
    show(els.retryWrap);
    s.updateControls();
  }

  async function getCamera(withAudio) {
    var c = { video: videoConstraints(s) };
    if (withAudio) c.audio = AUDIO_CONSTRAINTS;
    return navigator.mediaDevices.getUserMedia(c);
  }

  async function start() {
    hide(els.denied);
    hide(els.retryWrap);
    s.notice(null);
    var fresh;
    s.cameraBusy = true;
    try {
      try {
        fresh = await getCamera(true);
      } catch (err) {
        // No microphone (or none usable): go on with the camera alone.
        if (!err || (err.name !== "NotFoundError" && err.name !== "NotReadableError")) throw err;
        fresh = await getCamera(false);
      }
    } catch (err) {
      s.cameraBusy = false;
      failed(err);
      return;
    }
    s.cameraBusy = false;
    if (s.ended) {
      stopStream(fresh);
      return;
    }
    var old = s.stream;
    s.stream = fresh;
    stopStream(old);
    fresh.getTracks().forEach(watchTrack);
    var a = audioTrack();
    if (a) a.enabled = !s.micMuted;
    attachPreview();
    renderMute();
    s.updateControls();
    countCameras();
    if (s.pc) {
      // A restart while publishing: hand the new tracks to the connection.
      s.publisher.replaceOnSender(s.audioTx, audioTrack());
      s.publisher.replaceOnSender(s.videoTx, videoTrack());
    }
  }

  async function countCameras() {
    if (!els.switchCam || !navigator.mediaDevices.enumerateDevices) return;
    try {
      var devices = await navigator.mediaDevices.enumerateDevices();
      var cams = devices.filter(function (dev) { return dev.kind === "videoinput"; }).length;
      els.switchCam.classList.toggle("is-unavailable", cams < 2);
    } catch (err) {
      console.debug("vitrine: enumerateDevices failed", err);
    }
  }

  // Puts a fresh track of `kind` in place of the current one, in the preview and on the live
  // connection (replaceTrack: no renegotiation, the viewers see the switch directly).
  async function swapTrack(kind, track) {
    var old = kind === "audio" ? audioTrack() : videoTrack();
    if (kind === "audio") track.enabled = !s.micMuted;
    watchTrack(track);
    var tracks = s.stream ? s.stream.getTracks().filter(function (t) { return t !== old; }) : [];
    tracks.push(track);
    s.stream = new MediaStream(tracks);
    if (old && old !== track) old.stop();
    if (kind === "video") attachPreview();
    await s.publisher.replaceOnSender(kind === "audio" ? s.audioTx : s.videoTx, track);
    if (kind === "video") setBitrate(s);
    s.updateControls();
  }

  async function reopen(kind) {
    var c = kind === "audio" ? { audio: AUDIO_CONSTRAINTS } : { video: videoConstraints(s) };
    var fresh = await navigator.mediaDevices.getUserMedia(c);
    var track = kind === "audio" ? fresh.getAudioTracks()[0] : fresh.getVideoTracks()[0];
    if (!track) throw new Error("no " + kind + " track");
    await swapTrack(kind, track);
  }

  async function recoverTrack(kind) {
    if (document.visibilityState !== "visible") {
      s.recoverWhenVisible = true; // phones refuse the camera to a page in the background
      return;
    }
    s.cameraBusy = true;
    try {
      await reopen(kind);
    } catch (err) {
      failed(err);
    } finally {
      s.cameraBusy = false;
      s.updateControls();
    }
  }

  async function recoverEndedTracks() {
    var v = videoTrack();
    if (!v || v.readyState === "ended") await recoverTrack("video");
    var a = audioTrack();
    if (a && a.readyState === "ended") await recoverTrack("audio");
  }

  async function switchCamera() {
    if (s.cameraBusy || !s.stream) return;
    s.cameraBusy = true;
    s.updateControls();
    var previous = s.facing;
    s.facing = s.facing === "user" ? "environment" : "user";
    // Most phones cannot open two cameras at once: let go of the current one first.
    var old = videoTrack();
    if (old) old.stop();
    try {
      await reopen("video");
      // Some phones end the microphone track too when a camera opens: take it back.
      if (audioTrack() && audioTrack().readyState === "ended") await reopen("audio");
    } catch (err) {
      console.warn("vitrine: could not switch camera", err);
      s.notice(d.msgSwitchFailed, 4000);
      s.facing = previous;
      try {
        await reopen("video");
      } catch (err2) {
        failed(err2);
      }
    } finally {
      s.cameraBusy = false;
      s.updateControls();
    }
  }

  function toggleMute() {
    s.micMuted = !s.micMuted;
    var a = audioTrack();
    if (a) a.enabled = !s.micMuted;
    renderMute();
  }

  // The show is over: the camera and microphone are let go.
  function stop() {
    stopStream(s.stream);
    s.stream = null;
    els.preview.srcObject = null;
  }

  return {
    audioTrack: audioTrack,
    videoTrack: videoTrack,
    renderMute: renderMute,
    start: start,
    stop: stop,
    recoverEndedTracks: recoverEndedTracks,
    switchCamera: switchCamera,
    toggleMute: toggleMute
  };
}
