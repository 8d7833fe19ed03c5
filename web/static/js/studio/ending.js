// The studio's status polls (viewers, recording) and the show's end.
import { hide, show } from "../dom.js";
import { fetchStatus } from "../showstatus.js";
import { plural } from "../words.js";

var STATUS_EVERY_MS = 2000;

// s: the studio's shared state (studio.js); s.camera and s.publisher are its other parts.
export function ending(s) {
  var d = s.d;
  var els = s.els;
  var statusTimer = null;

  async function endShow() {
    if (!window.confirm(d.msgConfirmEnd)) return;
    els.goLive.disabled = true;
    var ok = false;
    try {
      var r = await fetch(s.endUrl, {
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
      s.notice(d.msgEndFailed, 6000);
      s.updateControls();
      return;
    }
    finish(null);
  }

  // The show is over (ended here, elsewhere, or refused by the server): stop everything.
  async function finish(message) {
    if (s.ended) return;
    s.ended = true;
    s.wantLive = false;
    s.attempt++;
    clearTimeout(s.retryTimer);
    clearTimeout(statusTimer);
    s.retryTimer = statusTimer = null;
    await s.publisher.leave(false);
    s.publisher.closePc();
    s.camera.stop();
    if (s.overlay) s.overlay.stop();
    hide(els.controls);
    hide(els.quality);
    hide(els.viewers);
    hide(els.denied);
    hide(els.retryWrap);
    hide(els.insecure);
    s.notice(message || null);
    show(els.ended);
    s.setState("ended");
  }

  async function poll() {
    statusTimer = null;
    if (s.ended || !s.statusUrl) return;
    try {
      var st = await fetchStatus(s.statusUrl);
      if (st) {
        if (st.status === "ended") {
          finish(null); // ended from the admin pages or another device
          return;
        }
        var recording = document.getElementById("studio-recording");
        if (recording) recording.hidden = !st.recording_problem;
        var n = Number(st.viewers);
        if (els.viewers && st.status === "live" && isFinite(n)) {
          els.viewers.textContent = plural(d, "msgViewers", n);
          show(els.viewers);
        } else {
          hide(els.viewers);
        }
      }
    } catch (err) {
      /* offline for now: ask again later */
    }
    if (!s.ended) statusTimer = setTimeout(poll, STATUS_EVERY_MS);
  }

  return { endShow: endShow, finish: finish, poll: poll };
}
