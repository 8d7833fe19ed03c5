// Vitrine studio: the seller's phone camera, published to Vitrine with WHIP.
// Everything it needs (endpoints, stream key, ICE servers, translated texts) comes from the
// data-* attributes of #studio. For browser tests, body[data-studio-state] always holds the
// state: offline, connecting, live, reconnecting or ended.
"use strict";

(function () {
  var root = document.getElementById("studio");
  if (!root) return;
  var d = root.dataset;
  var rtc = window.VitrineWebRTC;

  var QUALITY = {
    "720": { width: 1280, height: 720, bitrate: 1500000 },
    "540": { width: 960, height: 540, bitrate: 1000000 },
    "360": { width: 640, height: 360, bitrate: 600000 }
  };
  var QUALITY_KEY = "vitrine.studio.quality";
  var STATUS_EVERY_MS = 2000;
  var ICE_WAIT_MS = 2000;
  var CONNECT_TIMEOUT_MS = 15000;
  var FIRST_BACKOFF_MS = 1000;
  var MAX_BACKOFF_MS = 10000;

  function $(id) {
    return document.getElementById(id);
  }
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
  var whipUrl = local(d.whipUrl);
  var statusUrl = local(d.statusUrl);
  var endUrl = local(d.endUrl);
  var streamKey = d.streamKey || "";
  var iceServers = [];
  try {
    var parsed = JSON.parse(d.iceServers || "[]");
    if (Array.isArray(parsed)) iceServers = parsed;
  } catch (err) {
    console.warn("vitrine: bad data-ice-servers", err);
  }

  var state = null;
  var stream = null; // the camera: one video track and (usually) one audio track
  var facing = "user";
  var qualityKey = "720";
  var micMuted = false;
  var cameraBusy = false; // the camera is being (re)opened: track 'ended' events are expected
  var recoverWhenVisible = false;

  var pc = null;
  var audioTx = null;
  var videoTx = null;
  var sessionUrl = null; // the WHIP session (Location of the last successful POST)
  var attempt = 0; // publishing generation: stale async work compares against it
  var wantLive = false; // Go live was pressed and the show has not ended
  var ended = false;
  var backoff = FIRST_BACKOFF_MS;
  var retryTimer = null;
  var connectTimer = null;
  var statusTimer = null;
  var noticeTimer = null;
  var wakeLock = null;
  var wakeLockPending = false;

  // ---- small helpers -------------------------------------------------------------------

  function show(el) {
    if (el) el.hidden = false;
  }
  function hide(el) {
    if (el) el.hidden = true;
  }
  function notice(text, ms) {
    clearTimeout(noticeTimer);
    if (!els.notice) return;
    if (!text) {
      els.notice.textContent = "";
      hide(els.notice);
      return;
    }
    els.notice.textContent = text;
    show(els.notice);
    if (ms) noticeTimer = setTimeout(function () { notice(null); }, ms);
  }
  function audioTrack() {
    return stream ? stream.getAudioTracks()[0] || null : null;
  }
  function videoTrack() {
    return stream ? stream.getVideoTracks()[0] || null : null;
  }
  function stopStream(s) {
    if (s) s.getTracks().forEach(function (t) { t.stop(); });
  }
  function stateLabel(s) {
    return {
      offline: d.msgOffline,
      connecting: d.msgConnecting,
      live: d.msgLive,
      reconnecting: d.msgReconnecting,
      ended: d.msgEnded
    }[s];
  }

  function setState(s) {
    if (state === s) return;
    state = s;
    document.body.dataset.studioState = s;
    if (els.badge) {
      els.badge.dataset.state = s;
      els.badge.textContent = stateLabel(s) || "";
    }
    if (s === "connecting" || s === "live" || s === "reconnecting") holdWakeLock();
    else releaseWakeLock();
    updateControls();
  }

  function updateControls() {
    if (els.goLive) {
      els.goLive.textContent = wantLive ? d.msgEndShow : d.msgGoLive;
      els.goLive.classList.toggle("is-live", wantLive);
      els.goLive.disabled = ended || (!wantLive && (!stream || !window.RTCPeerConnection));
    }
    if (els.mute) els.mute.disabled = ended || !audioTrack();
    if (els.switchCam) els.switchCam.disabled = ended || !stream || cameraBusy;
    if (els.quality) els.quality.disabled = ended;
  }

  function renderMute() {
    if (!els.mute) return;
    els.mute.setAttribute("aria-pressed", micMuted ? "true" : "false");
    els.mute.classList.toggle("is-off", micMuted);
    if (els.muteText) els.muteText.textContent = micMuted ? d.msgMicOff : d.msgMicOn;
  }

  // ---- camera ----------------------------------------------------------------------------

  function videoConstraints() {
    var q = QUALITY[qualityKey];
    return {
      facingMode: { ideal: facing },
      width: { ideal: q.width },
      height: { ideal: q.height },
      frameRate: { ideal: 30 }
    };
  }
  var AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

  function playPreview() {
    var p = els.preview.play();
    if (p && p.catch) p.catch(function () {});
  }

  function updateMirror() {
    // Mirror the preview for a camera that faces the seller (as a mirror does); viewers get
    // the image unmirrored. Laptop webcams often report no facingMode: they face the user.
    var v = videoTrack();
    var settings = v && v.getSettings ? v.getSettings() : {};
    var front = settings.facingMode ? settings.facingMode === "user" : facing === "user";
    els.preview.classList.toggle("mirror", front);
  }

  function attachPreview() {
    els.preview.srcObject = stream;
    playPreview();
    updateMirror();
  }

  function watchTrack(track) {
    track.addEventListener("ended", function () {
      // The system took the camera or the microphone away (another app, a phone call...).
      if (cameraBusy || ended || !stream || stream.getTracks().indexOf(track) < 0) return;
      console.warn("vitrine: " + track.kind + " track ended, reopening it");
      recoverTrack(track.kind);
    });
  }

  function cameraFailed(err) {
    console.warn("vitrine: camera failed", err);
    var name = err && err.name;
    hide(els.denied);
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      show(els.denied);
      notice(null);
    } else if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      notice(d.msgNoCamera);
    } else if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      notice(d.msgCameraBusy);
    } else {
      notice(d.msgCameraError);
    }
    show(els.retryWrap);
    updateControls();
  }

  async function getCamera(withAudio) {
    var c = { video: videoConstraints() };
    if (withAudio) c.audio = AUDIO_CONSTRAINTS;
    return navigator.mediaDevices.getUserMedia(c);
  }

  async function startCamera() {
    hide(els.denied);
    hide(els.retryWrap);
    notice(null);
    var s;
    cameraBusy = true;
    try {
      try {
        s = await getCamera(true);
      } catch (err) {
        // No microphone (or none usable): go on with the camera alone.
        if (!err || (err.name !== "NotFoundError" && err.name !== "NotReadableError")) throw err;
        s = await getCamera(false);
      }
    } catch (err) {
      cameraBusy = false;
      cameraFailed(err);
      return;
    }
    cameraBusy = false;
    if (ended) {
      stopStream(s);
      return;
    }
    var old = stream;
    stream = s;
    stopStream(old);
    s.getTracks().forEach(watchTrack);
    var a = audioTrack();
    if (a) a.enabled = !micMuted;
    attachPreview();
    renderMute();
    updateControls();
    countCameras();
    if (pc) {
      // A restart while publishing: hand the new tracks to the connection.
      replaceOnSender(audioTx, audioTrack());
      replaceOnSender(videoTx, videoTrack());
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

  async function replaceOnSender(tx, track) {
    if (!tx || !tx.sender || !track) return;
    try {
      await tx.sender.replaceTrack(track);
    } catch (err) {
      console.warn("vitrine: replaceTrack failed, publishing again", err);
      if (wantLive && !ended) publish();
    }
  }

  // Puts a fresh track of `kind` in place of the current one, in the preview and on the live
  // connection (replaceTrack: no renegotiation, the viewers see the switch directly).
  async function swapTrack(kind, track) {
    var old = kind === "audio" ? audioTrack() : videoTrack();
    if (kind === "audio") track.enabled = !micMuted;
    watchTrack(track);
    var tracks = stream ? stream.getTracks().filter(function (t) { return t !== old; }) : [];
    tracks.push(track);
    stream = new MediaStream(tracks);
    if (old && old !== track) old.stop();
    if (kind === "video") attachPreview();
    await replaceOnSender(kind === "audio" ? audioTx : videoTx, track);
    if (kind === "video") setBitrate();
    updateControls();
  }

  async function reopen(kind) {
    var c = kind === "audio" ? { audio: AUDIO_CONSTRAINTS } : { video: videoConstraints() };
    var s = await navigator.mediaDevices.getUserMedia(c);
    var track = kind === "audio" ? s.getAudioTracks()[0] : s.getVideoTracks()[0];
    if (!track) throw new Error("no " + kind + " track");
    await swapTrack(kind, track);
  }

  async function recoverTrack(kind) {
    if (document.visibilityState !== "visible") {
      recoverWhenVisible = true; // phones refuse the camera to a page in the background
      return;
    }
    cameraBusy = true;
    try {
      await reopen(kind);
    } catch (err) {
      cameraFailed(err);
    } finally {
      cameraBusy = false;
      updateControls();
    }
  }

  async function recoverEndedTracks() {
    var v = videoTrack();
    if (!v || v.readyState === "ended") await recoverTrack("video");
    var a = audioTrack();
    if (a && a.readyState === "ended") await recoverTrack("audio");
  }

  async function switchCamera() {
    if (cameraBusy || !stream) return;
    cameraBusy = true;
    updateControls();
    var previous = facing;
    facing = facing === "user" ? "environment" : "user";
    // Most phones cannot open two cameras at once: let go of the current one first.
    var old = videoTrack();
    if (old) old.stop();
    try {
      await reopen("video");
      // Some phones end the microphone track too when a camera opens: take it back.
      if (audioTrack() && audioTrack().readyState === "ended") await reopen("audio");
    } catch (err) {
      console.warn("vitrine: could not switch camera", err);
      notice(d.msgSwitchFailed, 4000);
      facing = previous;
      try {
        await reopen("video");
      } catch (err2) {
        cameraFailed(err2);
      }
    } finally {
      cameraBusy = false;
      updateControls();
    }
  }

  function toggleMute() {
    micMuted = !micMuted;
    var a = audioTrack();
    if (a) a.enabled = !micMuted;
    renderMute();
  }

  async function changeQuality() {
    var key = els.quality.value;
    qualityKey = QUALITY[key] ? key : "720";
    try {
      window.localStorage.setItem(QUALITY_KEY, qualityKey);
    } catch (err) {
      /* private mode: the choice is not remembered */
    }
    var v = videoTrack();
    if (v && v.applyConstraints) {
      var c = videoConstraints();
      delete c.facingMode; // the device stays; only its format changes
      try {
        await v.applyConstraints(c);
      } catch (err) {
        console.warn("vitrine: applyConstraints failed", err);
      }
    }
    await setBitrate();
  }

  async function setBitrate() {
    var sender = videoTx && videoTx.sender;
    if (!sender || !sender.getParameters || !sender.setParameters) return;
    try {
      var params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      params.encodings[0].maxBitrate = QUALITY[qualityKey].bitrate;
      await sender.setParameters(params);
    } catch (err) {
      console.debug("vitrine: setParameters failed", err);
    }
  }

  // ---- publishing (WHIP) ---------------------------------------------------------------

  function pcState(conn) {
    if (conn.connectionState) return conn.connectionState;
    var ice = conn.iceConnectionState; // browsers without connectionState
    return ice === "completed" ? "connected" : ice === "checking" ? "connecting" : ice;
  }

  function closePc() {
    clearTimeout(connectTimer);
    connectTimer = null;
    var old = pc;
    pc = null;
    audioTx = null;
    videoTx = null;
    if (old) {
      try {
        old.close();
      } catch (err) {
        /* already closed */
      }
    }
  }

  function addTransceiver(conn, trackOrKind, encodings) {
    var init = { direction: "sendonly", streams: stream ? [stream] : [] };
    if (encodings) init.sendEncodings = encodings;
    try {
      return conn.addTransceiver(trackOrKind, init);
    } catch (err) {
      if (!encodings) throw err;
      delete init.sendEncodings; // browsers without sendEncodings: setParameters does it later
      return conn.addTransceiver(trackOrKind, init);
    }
  }

  async function publish() {
    if (ended || !wantLive || !stream) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    var my = ++attempt;
    closePc();
    setState(state === "offline" || state === "connecting" ? "connecting" : "reconnecting");
    var conn;
    try {
      conn = new RTCPeerConnection({ iceServers: iceServers });
      pc = conn;
      audioTx = addTransceiver(conn, audioTrack() || "audio", null);
      videoTx = addTransceiver(conn, videoTrack() || "video", [{ maxBitrate: QUALITY[qualityKey].bitrate }]);
      rtc.preferCodec(videoTx, "video/H264");
      var onChange = function () { onPcState(conn, my); };
      conn.addEventListener("connectionstatechange", onChange);
      conn.addEventListener("iceconnectionstatechange", onChange);
      await conn.setLocalDescription(await conn.createOffer());
      await rtc.waitForIce(conn, ICE_WAIT_MS);
      if (my !== attempt) return;
      var headers = { Authorization: "Bearer " + streamKey };
      var res = await rtc.postSdp(whipUrl, conn.localDescription.sdp, headers);
      if (my !== attempt) return; // a newer attempt took over (or the show ended)
      sessionUrl = res.location;
      await conn.setRemoteDescription({ type: "answer", sdp: res.answer });
      setBitrate();
      connectTimer = setTimeout(function () {
        if (conn === pc && pcState(conn) !== "connected") {
          console.warn("vitrine: no media connection after " + CONNECT_TIMEOUT_MS + " ms");
          setState("reconnecting");
          scheduleRepublish();
        }
      }, CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (my === attempt) publishFailed(err);
    }
  }

  function publishFailed(err) {
    console.warn("vitrine: publishing failed", err);
    closePc();
    if (err && err.status === 401) {
      // Wrong stream key (it was probably rotated): retrying cannot help.
      wantLive = false;
      setState("offline");
      updateControls();
      notice(d.msgWrongKey);
      return;
    }
    if (err && err.status === 409) {
      finish(d.msgShowEnded);
      return;
    }
    if (err && err.status === 507) {
      // Not enough disk to record the show: retrying cannot help until space is freed.
      wantLive = false;
      setState("offline");
      updateControls();
      show($("studio-disk"));
      return;
    }
    setState("reconnecting");
    if (navigator.onLine === false) notice(d.msgOfflineNetwork);
    scheduleRepublish();
  }

  function onPcState(conn, my) {
    if (conn !== pc || my !== attempt || ended) return;
    var s = pcState(conn);
    if (s === "connected") {
      clearTimeout(connectTimer);
      clearTimeout(retryTimer);
      retryTimer = null;
      backoff = FIRST_BACKOFF_MS;
      notice(null);
      setState("live");
    } else if (s === "disconnected" || s === "failed") {
      setState("reconnecting");
      scheduleRepublish();
    }
  }

  // Publishes again with a fresh connection (the server has no ICE restart), after 1 s, 2 s,
  // 4 s... at most 10 s, as long as the show goes on.
  function scheduleRepublish() {
    if (ended || !wantLive || retryTimer) return;
    var wait = backoff;
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (pc && pcState(pc) === "connected") {
        setState("live"); // a short disconnection that healed by itself
        return;
      }
      publish();
    }, wait);
  }

  function goLive() {
    if (ended || !stream || !rtc || !window.RTCPeerConnection) return;
    wantLive = true;
    backoff = FIRST_BACKOFF_MS;
    notice(null);
    updateControls();
    publish();
  }

  function deleteSession(keepalive) {
    var url = sessionUrl;
    sessionUrl = null;
    if (!url) return Promise.resolve();
    var request = fetch(url, {
      method: "DELETE",
      headers: { Authorization: "Bearer " + streamKey },
      credentials: "same-origin",
      keepalive: !!keepalive
    }).catch(function () {});
    // Never wait long for it: the server also notices a closed connection.
    return Promise.race([request, new Promise(function (r) { setTimeout(r, 3000); })]);
  }

  async function endShow() {
    if (!window.confirm(d.msgConfirmEnd)) return;
    els.goLive.disabled = true;
    var ok = false;
    try {
      var r = await fetch(endUrl, {
        method: "POST",
        headers: { "X-CSRF-Token": d.csrfToken || "" },
        credentials: "same-origin",
        cache: "no-store"
      });
      ok = r.ok || r.status === 409; // 409: it had already ended
    } catch (err) {
      console.warn("vitrine: ending the show failed", err);
    }
    if (!ok) {
      notice(d.msgEndFailed, 6000);
      updateControls();
      return;
    }
    finish(null);
  }

  // The show is over (ended here, elsewhere, or refused by the server): stop everything.
  async function finish(message) {
    if (ended) return;
    ended = true;
    wantLive = false;
    attempt++;
    clearTimeout(retryTimer);
    clearTimeout(statusTimer);
    retryTimer = statusTimer = null;
    await deleteSession(false);
    closePc();
    stopStream(stream);
    stream = null;
    els.preview.srcObject = null;
    hide(els.controls);
    hide(els.quality);
    hide(els.viewers);
    hide(els.denied);
    hide(els.retryWrap);
    hide(els.insecure);
    notice(message || null);
    show(els.ended);
    setState("ended");
  }

  // ---- show status -----------------------------------------------------------------------

  async function pollStatus() {
    statusTimer = null;
    if (ended || !statusUrl) return;
    try {
      var r = await fetch(statusUrl, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      });
      if (r.ok) {
        var s = await r.json();
        if (s.status === "ended") {
          finish(null); // ended from the admin pages or another device
          return;
        }
        var recording = $("studio-recording");
        if (recording) recording.hidden = !s.recording_problem;
        var n = Number(s.viewers);
        if (els.viewers && s.status === "live" && isFinite(n)) {
          els.viewers.textContent = window.VitrineRoom
            ? window.VitrineRoom.plural(d, "msgViewers", n)
            : (d.msgViewers || "{n}").replace("{n}", String(n));
          show(els.viewers);
        } else {
          hide(els.viewers);
        }
      }
    } catch (err) {
      /* offline for now: ask again later */
    }
    if (!ended) statusTimer = setTimeout(pollStatus, STATUS_EVERY_MS);
  }

  // ---- screen wake lock ----------------------------------------------------------------

  async function holdWakeLock() {
    if (wakeLock || wakeLockPending || !("wakeLock" in navigator)) return;
    if (document.visibilityState !== "visible") return;
    wakeLockPending = true;
    try {
      var lock = await navigator.wakeLock.request("screen");
      if (!wantLive || ended) {
        lock.release().catch(function () {});
      } else {
        wakeLock = lock;
        lock.addEventListener("release", function () {
          if (wakeLock === lock) wakeLock = null;
        });
      }
    } catch (err) {
      console.debug("vitrine: no wake lock", err);
    } finally {
      wakeLockPending = false;
    }
  }

  function releaseWakeLock() {
    if (!wakeLock) return;
    var lock = wakeLock;
    wakeLock = null;
    lock.release().catch(function () {});
  }

  // ---- start -----------------------------------------------------------------------------

  function wire() {
    if (els.goLive) {
      els.goLive.addEventListener("click", function () {
        if (wantLive) endShow();
        else goLive();
      });
    }
    if (els.switchCam) els.switchCam.addEventListener("click", switchCamera);
    if (els.mute) els.mute.addEventListener("click", toggleMute);
    if (els.quality) els.quality.addEventListener("change", changeQuality);
    if (els.retry) els.retry.addEventListener("click", startCamera);

    window.addEventListener("online", function () {
      if (!wantLive || ended) return;
      notice(null);
      if (state !== "live") {
        backoff = FIRST_BACKOFF_MS;
        publish(); // the network is back: do not wait for the back-off
      }
    });
    window.addEventListener("offline", function () {
      if (wantLive && !ended) notice(d.msgOfflineNetwork);
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState !== "visible" || ended) return;
      if (wantLive) holdWakeLock();
      if (recoverWhenVisible) {
        recoverWhenVisible = false;
        recoverEndedTracks();
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (!wantLive || ended) return;
      event.preventDefault(); // leaving the page stops the show's video
      event.returnValue = "";
    });
    window.addEventListener("pagehide", function () {
      if (sessionUrl && !ended) deleteSession(true);
    });
  }

  function start() {
    if (d.showStatus === "ended") {
      ended = true;
      setState("ended");
      return;
    }
    try {
      var saved = window.localStorage.getItem(QUALITY_KEY);
      if (saved && QUALITY[saved]) qualityKey = saved;
    } catch (err) {
      /* no storage */
    }
    if (els.quality) els.quality.value = qualityKey;
    setState("offline");
    renderMute();
    wire();
    pollStatus();
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show(els.insecure);
      updateControls();
      return;
    }
    if (!window.RTCPeerConnection || !rtc) notice(d.msgNoWebrtc);
    startCamera();
  }

  start();
})();
