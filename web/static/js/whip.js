// WebRTC signalling shared by the studio (WHIP publishing) and the player (WHEP playing).
// Signalling is plain HTTP: one SDP offer POSTed once ICE gathering is done (no trickle),
// an SDP answer back with a Location header naming the session, DELETE on that to leave.

var POST_TIMEOUT_MS = 15000;

// The ICE servers of the page's data-ice-servers (JSON), [] when missing or unreadable.
export function iceServersFrom(json) {
  try {
    var parsed = JSON.parse(json || "[]");
    if (Array.isArray(parsed)) return parsed;
  } catch (err) {
    console.warn("vitrine: bad data-ice-servers", err);
  }
  return [];
}

// The connection's state, from the ICE state in browsers without connectionState.
export function connectionState(conn) {
  if (conn.connectionState) return conn.connectionState;
  var ice = conn.iceConnectionState;
  return ice === "completed" ? "connected" : ice === "checking" ? "connecting" : ice;
}

// DELETEs a WHIP or WHEP session; keepalive lets the request outlive the page. Never rejects.
export function deleteSession(url, headers, keepalive) {
  if (!url) return Promise.resolve();
  return fetch(url, {
    method: "DELETE",
    headers: headers || {},
    credentials: "same-origin",
    keepalive: !!keepalive
  }).catch(function () {});
}

// Resolves once ICE gathering is complete, or after `ms` milliseconds (whichever is first),
// so that pc.localDescription carries the candidates gathered so far. Never rejects.
export function waitForIce(pc, ms) {
  return new Promise(function (resolve) {
    if (pc.iceGatheringState === "complete") {
      resolve();
      return;
    }
    var timer = null;
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    }
    function onState() {
      if (pc.iceGatheringState === "complete") done();
    }
    function onCandidate(event) {
      if (!event.candidate) done(); // the end-of-candidates signal
    }
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
    timer = setTimeout(done, typeof ms === "number" ? ms : 2000);
  });
}

function httpError(message, status) {
  var err = new Error(message);
  err.status = status;
  return err;
}

// POSTs an SDP offer; resolves to {answer, location} on 201 Created. Rejects with an Error
// whose .status is the HTTP status (0 for a network failure or a time-out).
export async function postSdp(url, sdp, headers) {
  var all = { "Content-Type": "application/sdp" };
  Object.keys(headers || {}).forEach(function (k) {
    all[k] = headers[k];
  });
  var controller = window.AbortController ? new AbortController() : null;
  var timer = controller ? setTimeout(function () { controller.abort(); }, POST_TIMEOUT_MS) : null;
  var response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: all,
      body: sdp,
      cache: "no-store",
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    });
  } catch (err) {
    throw httpError("SDP POST failed: " + err, 0);
  } finally {
    clearTimeout(timer);
  }
  if (response.status !== 201) {
    throw httpError("SDP POST answered " + response.status, response.status);
  }
  var answer = await response.text();
  var loc = response.headers.get("Location");
  var location = null;
  if (loc) {
    try {
      location = new URL(loc, response.url || url).href;
    } catch (err) {
      location = loc;
    }
  }
  return { answer: answer, location: location };
}

function isH264Baseline(codec) {
  var fmtp = (codec.sdpFmtpLine || "").toLowerCase();
  return /profile-level-id=42/.test(fmtp);
}

function isPacketizationMode1(codec) {
  return /packetization-mode=1/.test((codec.sdpFmtpLine || "").toLowerCase());
}

// Orders `codecs` with `mimeType` first (for H264: packetization-mode=1 and the constrained
// baseline profile, which every decoder plays, ahead of the others), then VP8, then the rest
// (RTX, RED, FEC and other codecs keep their relative order).
function ordered(codecs, mimeType) {
  var want = mimeType.toLowerCase();
  var first = [];
  var fallback = [];
  var rest = [];
  codecs.forEach(function (c) {
    var mt = (c.mimeType || "").toLowerCase();
    if (mt === want) first.push(c);
    else if (mt === "video/vp8") fallback.push(c);
    else rest.push(c);
  });
  if (want === "video/h264") {
    first.sort(function (a, b) {
      var sa = (isPacketizationMode1(a) ? 0 : 2) + (isH264Baseline(a) ? 0 : 1);
      var sb = (isPacketizationMode1(b) ? 0 : 2) + (isH264Baseline(b) ? 0 : 1);
      return sa - sb;
    });
  }
  if (!first.length && !fallback.length) return null;
  return first.concat(fallback, rest);
}

// Puts `mimeType` (e.g. "video/H264") first in the transceiver's codec list, VP8 second.
// Does nothing where the browser cannot set codec preferences.
export function preferCodec(transceiver, mimeType) {
  mimeType = mimeType || "video/H264";
  var kind = mimeType.split("/")[0].toLowerCase();
  if (!transceiver || typeof transceiver.setCodecPreferences !== "function") return;
  var sources = [];
  if (window.RTCRtpSender && typeof RTCRtpSender.getCapabilities === "function") {
    sources.push(RTCRtpSender);
  }
  // Some browsers only accept receive codecs (e.g. on a recvonly transceiver).
  if (window.RTCRtpReceiver && typeof RTCRtpReceiver.getCapabilities === "function") {
    sources.push(RTCRtpReceiver);
  }
  for (var i = 0; i < sources.length; i++) {
    try {
      var caps = sources[i].getCapabilities(kind);
      var codecs = caps && caps.codecs ? ordered(caps.codecs, mimeType) : null;
      if (!codecs) continue;
      transceiver.setCodecPreferences(codecs);
      return;
    } catch (err) {
      console.debug("vitrine: setCodecPreferences refused", err);
    }
  }
}

// Simulcast (RFC 8853; WHIP: RFC 9725): the camera sent at full, half and quarter size at
// once, so the server can give a viewer on a weak link a smaller picture instead of freezes.
// `maxBitrate` is the full size's; `height` the camera's. No layer under 180 lines (browsers
// drop those anyway). The server answers which layers it takes (a=simulcast:recv).
export function simulcastEncodings(maxBitrate, height) {
  var layers = [{ rid: "h", scaleResolutionDownBy: 1, maxBitrate: maxBitrate }];
  if (height / 2 >= 180) {
    layers.push({ rid: "m", scaleResolutionDownBy: 2, maxBitrate: Math.round(maxBitrate / 3) });
  }
  if (height / 4 >= 180) {
    layers.push({ rid: "l", scaleResolutionDownBy: 4, maxBitrate: Math.round(maxBitrate / 10) });
  }
  return layers.length > 1 ? layers : [{ maxBitrate: maxBitrate }];
}
