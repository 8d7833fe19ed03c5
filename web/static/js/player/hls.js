// The live player's HLS path: the show's low-latency HLS rendition, when WebRTC cannot be used.
// player/whep.js switches here when the browser has no RTCPeerConnection, when ICE does not
// connect within a few seconds (UDP blocked), when the relay is full (WHEP 503 or 429), or
// when the page says the show is HLS only (data-hls-only). Safari plays the playlist itself;
// other browsers get the vendored hls.js (web/static/vendor/hls.js), loaded only then. Once
// on HLS the page stays on it. The viewer sees the same stage as on WebRTC, never an error.
// For browser tests: body[data-player-path] is "webrtc" or "hls".
//
// "From the start" (#from-start, shown while the show is live and its start playlist
// exists, docs/media.md): plays /hls/<show>/start.m3u8 (the recording from its first
// frame) from 0, over HLS even for a page on WebRTC; pressed again, "Back to live" plays
// the live rendition. body[data-hls-from] is "start" or "live".
var HLS_SCRIPT = "/static/vendor/hls.js/hls.light.min.js";
var RETRY_MS = 2000;
var START_CHECK_MS = 10000; // while live: whether the start playlist exists yet
var loading = null;

export function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!loading) {
    loading = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = HLS_SCRIPT;
      s.onload = function () { resolve(window.Hls); };
      s.onerror = function () { loading = null; reject(new Error("hls.js did not load")); };
      document.head.appendChild(s);
    });
  }
  return loading;
}

// Safari (and every iOS browser, all WebKit) plays HLS itself, low-latency parts included.
// Recent Chromium answers "maybe" too, but its own player knows no LL-HLS: hls.js there.
export function nativeHls(video) {
  var says = !!(video.canPlayType && video.canPlayType("application/vnd.apple.mpegurl"));
  var mse = !!(window.MediaSource || window.ManagedMediaSource);
  return says && (!mse || /Apple/.test(navigator.vendor || ""));
}

// Whether this page can fall back to HLS at all (a rendition URL and a way to play it).
export function hlsPossible(p) {
  return !!p.d.hlsUrl && (nativeHls(p.video) || !!window.MediaSource || !!window.ManagedMediaSource);
}

// Says the path on the page; kpi.js reports it with the viewer's join.
export function setPath(path) {
  if (document.body.dataset.playerPath === path) return;
  document.body.dataset.playerPath = path;
  document.dispatchEvent(new CustomEvent("vitrine:path"));
}

// p: the player's shared state (player.js); it is p.hls.
export function hlsPlayer(p) {
  var d = p.d;
  var video = p.video;
  var engine = null; // the hls.js instance, when not native
  var retryTimer = null;
  var fromStart = false; // playing the start playlist, not the live edge
  var startKnown = false; // the start playlist answered while live
  var button = document.getElementById("from-start");

  // From this server even when the live rendition comes from a CDN (media.hls_base_url):
  // the start's answers are not for caches, and a caching proxy drops Range headers.
  function startUrl() {
    return new URL(d.hlsUrl, window.location.href).pathname.replace(/index\.m3u8$/, "start.m3u8");
  }
  function source() {
    return fromStart ? startUrl() : d.hlsUrl;
  }

  function renderStart() {
    var live = p.status === "live" && !p.stopped;
    if (!live) {
      startKnown = false;
      fromStart = false;
    }
    document.body.dataset.hlsFrom = fromStart ? "start" : "live";
    if (!button) return;
    button.hidden = !(live && startKnown && (p.path === "hls" || hlsPossible(p)));
    button.setAttribute("aria-pressed", fromStart ? "true" : "false");
    button.setAttribute("aria-label", fromStart ? button.dataset.msgLive : button.dataset.msgStart);
  }

  function checkStart() {
    if (startKnown || p.status !== "live" || !button || !/index\.m3u8$/.test(d.hlsUrl || "")) {
      renderStart();
      return;
    }
    fetch(startUrl(), { method: "HEAD", cache: "no-store", credentials: "omit" })
      .then(function (r) {
        startKnown = r.ok && p.status === "live";
        renderStart();
      })
      .catch(function () {
        /* not now: asked again later */
      });
  }

  function toggleStart() {
    fromStart = !fromStart;
    renderStart();
    if (p.path !== "hls") {
      start(); // a page on WebRTC goes over HLS to go back in time
      return;
    }
    stopEngine();
    load();
  }

  function onPlaying() {
    if (p.path !== "hls" || p.stopped) return;
    p.playing = true;
    p.everPlayed = true;
    if (p.els.stage) p.els.stage.classList.add("has-video");
    video.hidden = false;
    if (p.status === "live" && p.publishing === false) {
      p.stage.says("reconnecting", d.msgReconnecting);
    } else {
      p.stage.setState("playing");
      p.stage.hideOverlay();
    }
    p.stage.renderTop();
    p.stage.renderUnmute();
  }

  function retryLater() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (p.stopped || p.suspended || p.path !== "hls") return;
      stopEngine();
      load();
    }, RETRY_MS);
  }

  function stopEngine() {
    if (engine) {
      try {
        engine.destroy();
      } catch (err) {
        /* already gone */
      }
      engine = null;
    }
  }

  async function load() {
    if (p.stopped || p.suspended) return;
    if (nativeHls(video)) {
      video.srcObject = null;
      video.src = source();
      if (fromStart) {
        video.addEventListener("loadedmetadata", function toZero() {
          video.removeEventListener("loadedmetadata", toZero);
          if (fromStart) video.currentTime = 0;
        });
      }
      p.stage.tryPlay();
      return;
    }
    var Hls;
    try {
      Hls = await loadHlsJs();
    } catch (err) {
      console.warn("vitrine:", err);
      retryLater();
      return;
    }
    if (p.stopped || p.suspended || p.path !== "hls") return;
    if (!Hls || !Hls.isSupported()) {
      p.stopped = true;
      p.stage.says("unsupported", d.msgUnsupported);
      return;
    }
    stopEngine();
    // No worker: the page's CSP allows scripts from this origin only, not blob: workers.
    engine = new Hls({
      lowLatencyMode: !fromStart,
      enableWorker: false,
      backBufferLength: 30,
      startPosition: fromStart ? 0 : -1 // the start: its first frame; else the live edge
    });
    engine.on(Hls.Events.MANIFEST_PARSED, function () { p.stage.tryPlay(); });
    engine.on(Hls.Events.ERROR, function (_event, data) {
      if (!data || !data.fatal) return;
      // Not live yet, a new publisher, a network blip: start again in a moment.
      console.warn("vitrine: HLS interrupted", data.type, data.details);
      retryLater();
    });
    video.srcObject = null;
    engine.attachMedia(video);
    engine.loadSource(source());
  }

  // Switches the player to HLS for good (the WebRTC session, if any, is closed first).
  function start() {
    if (p.path === "hls" || p.stopped) return;
    p.path = "hls";
    setPath("hls");
    p.whep.teardown();
    clearTimeout(p.retryTimer);
    p.retryTimer = null;
    if (p.everPlayed) p.stage.says("reconnecting", d.msgReconnecting);
    else p.stage.says("connecting", d.msgConnecting);
    load();
  }

  function stop() {
    clearTimeout(retryTimer);
    retryTimer = null;
    stopEngine();
    if (p.path === "hls") {
      video.removeAttribute("src");
      try {
        video.load();
      } catch (err) {
        /* nothing loaded */
      }
    }
  }

  function resume() {
    if (p.path === "hls" && !p.stopped) load();
  }

  function wire() {
    video.addEventListener("playing", onPlaying);
    video.addEventListener("loadeddata", onPlaying);
    if (button) {
      button.addEventListener("click", toggleStart);
      checkStart();
      setInterval(checkStart, START_CHECK_MS);
    }
  }

  return { start: start, stop: stop, resume: resume, wire: wire };
}
