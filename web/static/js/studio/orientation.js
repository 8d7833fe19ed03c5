// The studio's camera follows the phone's orientation: turned, it is asked for the other format.
// The track changes format in place (applyConstraints): the connection is not renegotiated
// and viewers see the picture turn with the phone. For browser tests:
// body[data-studio-orientation] is "portrait" or "landscape".
import { portrait, setBitrate, videoConstraints } from "./quality.js";

// s: the studio's shared state (studio.js).
export function followOrientation(s) {
  var query = window.matchMedia && window.matchMedia("(orientation: portrait)");
  if (!query) return;

  async function turned() {
    document.body.dataset.studioOrientation = portrait() ? "portrait" : "landscape";
    var v = s.camera.videoTrack();
    if (!v || !v.applyConstraints || s.cameraBusy || s.ended) return;
    var c = videoConstraints(s);
    delete c.facingMode; // the same camera, another format
    try {
      await v.applyConstraints(c);
    } catch (err) {
      console.warn("vitrine: the camera could not follow the orientation", err);
    }
    await setBitrate(s);
  }

  document.body.dataset.studioOrientation = portrait() ? "portrait" : "landscape";
  if (query.addEventListener) query.addEventListener("change", turned);
  else if (query.addListener) query.addListener(turned);
}
