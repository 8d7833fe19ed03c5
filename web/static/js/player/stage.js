// The live player's stage: its state, the overlay, the viewer count, the sound button.
import { hide, show } from "../dom.js";
import { plural } from "../words.js";

// p: the player's shared state (player.js).
export function stage(p) {
  var d = p.d;
  var els = p.els;
  var video = p.video;
  var unmuteText = els.unmute ? els.unmute.textContent : "";

  function setState(s) {
    if (p.state === s) return;
    p.state = s;
    document.body.dataset.playerState = s;
  }

  function showOverlay(message) {
    if (!els.overlay) return;
    if (!els.message) {
      els.message = document.createElement("p");
      els.message.className = "stage-message";
      els.message.id = "stage-message";
      els.overlay.appendChild(els.message);
    }
    if (message) els.message.textContent = message;
    show(els.overlay);
  }

  function hideOverlay() {
    hide(els.overlay);
  }

  // Once the show is live, the "starts at" line and the countdown are past.
  function hideSchedule() {
    if (!els.overlay) return;
    els.overlay.querySelectorAll(".stage-when, .countdown").forEach(hide);
  }

  function renderTop() {
    if (!els.topBar) return;
    if (p.playing && p.state === "playing") {
      show(els.topBar);
      if (els.viewers) {
        els.viewers.textContent = p.viewers === null ? "" : plural(d, "msgViewers", p.viewers);
      }
    } else {
      hide(els.topBar);
    }
  }

  function renderUnmute() {
    var unmute = els.unmute;
    if (!unmute) return;
    if (p.needsTap && (video.srcObject || video.currentSrc)) {
      unmute.textContent = d.msgTapToPlay || unmuteText;
      show(unmute);
    } else if (p.playing && video.muted) {
      unmute.textContent = unmuteText;
      show(unmute);
    } else {
      hide(unmute);
    }
  }

  // Says where things stand, in the state and on the overlay.
  function says(s, message) {
    setState(s);
    showOverlay(message);
  }

  function waiting() {
    if (p.everPlayed) says("reconnecting", d.msgReconnecting);
    else says("waiting", d.msgWaiting);
    renderTop();
  }

  function resumed() {
    setState("playing");
    hideOverlay();
    renderTop();
    renderUnmute();
  }

  function tryPlay() {
    var playing = video.play();
    if (!playing || !playing.then) return;
    playing.then(
      function () {
        p.needsTap = false;
        renderUnmute();
      },
      function (err) {
        // Autoplay refused (e.g. battery saving): the viewer starts it with a tap.
        console.debug("vitrine: play() refused", err);
        if (err && err.name === "AbortError") return; // a newer source replaced this one
        p.needsTap = true;
        renderUnmute();
      }
    );
  }

  function wire() {
    if (!els.unmute) return;
    els.unmute.addEventListener("click", function () {
      p.needsTap = false;
      hide(els.unmute);
      video.muted = false;
      var playing = video.play();
      if (!playing || !playing.then) return;
      playing.then(renderUnmute, function (err) {
        // Sound refused after all: keep the picture going, muted, and offer the button again.
        console.debug("vitrine: unmuted play() refused", err);
        video.muted = true;
        tryPlay();
        renderUnmute();
      });
    });
  }

  return {
    setState: setState,
    says: says,
    showOverlay: showOverlay,
    hideOverlay: hideOverlay,
    hideSchedule: hideSchedule,
    renderTop: renderTop,
    renderUnmute: renderUnmute,
    waiting: waiting,
    resumed: resumed,
    tryPlay: tryPlay,
    wire: wire
  };
}
