// The studio's video quality: three formats (remembered), camera constraints, sender bitrate.

export var QUALITY = {
  "720": { width: 1280, height: 720, bitrate: 1500000 },
  "540": { width: 960, height: 540, bitrate: 1000000 },
  "360": { width: 640, height: 360, bitrate: 600000 }
};
var QUALITY_KEY = "vitrine.studio.quality";

export var AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// The quality this device used last, or 720.
export function savedQuality() {
  try {
    var saved = window.localStorage.getItem(QUALITY_KEY);
    if (saved && QUALITY[saved]) return saved;
  } catch (err) {
    /* no storage */
  }
  return "720";
}

// The phone is held upright (a desktop's screen is not).
export function portrait() {
  return !!(window.matchMedia && window.matchMedia("(orientation: portrait)").matches);
}

// s: the studio's shared state (studio.js). The format follows the way the phone is held:
// upright, the camera is asked for a portrait picture (720x1280), so viewers get the show
// the way the host sees it.
export function videoConstraints(s) {
  var q = QUALITY[s.qualityKey];
  var upright = portrait();
  return {
    facingMode: { ideal: s.facing },
    width: { ideal: upright ? q.height : q.width },
    height: { ideal: upright ? q.width : q.height },
    frameRate: { ideal: 30 }
  };
}

export async function setBitrate(s) {
  var sender = s.videoTx && s.videoTx.sender;
  if (!sender || !sender.getParameters || !sender.setParameters) return;
  try {
    var params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    params.encodings[0].maxBitrate = QUALITY[s.qualityKey].bitrate;
    await sender.setParameters(params);
  } catch (err) {
    console.debug("vitrine: setParameters failed", err);
  }
}

// The seller picked another quality: the camera changes format, the sender its bitrate.
export async function changeQuality(s) {
  var key = s.els.quality.value;
  s.qualityKey = QUALITY[key] ? key : "720";
  try {
    window.localStorage.setItem(QUALITY_KEY, s.qualityKey);
  } catch (err) {
    /* private mode: the choice is not remembered */
  }
  var v = s.camera.videoTrack();
  if (v && v.applyConstraints) {
    var c = videoConstraints(s);
    delete c.facingMode; // the device stays; only its format changes
    try {
      await v.applyConstraints(c);
    } catch (err) {
      console.warn("vitrine: applyConstraints failed", err);
    }
  }
  await setBitrate(s);
}
