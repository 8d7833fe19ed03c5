// The moderation panel's timed offer: starting one, its countdown and codes left, ending it.
import { hide, show, text } from "../dom.js";
import { clock, format, plural } from "../words.js";
import { wireCodesFile } from "./codes_file.js";

var CODES_PER_MESSAGE = 200;

// page: {d, els, send} of the moderation panel (moderation.js).
export function offerControls(page) {
  var d = page.d;
  var els = page.els;
  var offer = null;
  var pendingCode = null; // sent with start_offer, not seen in an offer yet
  var knownCode = null; // {endsAt, code}: the code of the current offer, when known
  var offerTimer = null;

  function render() {
    if (!offer) {
      clearInterval(offerTimer);
      offerTimer = null;
      hide(els.offerLive);
      if (els.offerEnd) els.offerEnd.disabled = true;
      return;
    }
    var left = Number(offer.ends_at) - Date.now() / 1000;
    if (!(left > 0)) {
      offer = null;
      render();
      return;
    }
    var code = offer.code || (knownCode && knownCode.endsAt === offer.ends_at ? knownCode.code : "");
    text(els.offerCode, code);
    if (els.offerCode) els.offerCode.hidden = !code;
    text(els.offerEnds, format(d.msgOfferEnds, { t: clock(left) }));
    var hasQty = offer.quantity !== null && offer.quantity !== undefined;
    if (hasQty) {
      var remaining = offer.remaining === null || offer.remaining === undefined ? offer.quantity : offer.remaining;
      text(
        els.offerLeft,
        plural(d, "msgOfferLeft", Math.max(0, Number(remaining))) + " · " +
          plural(d, "msgOfferLimited", Number(offer.quantity))
      );
      show(els.offerLeft);
    } else {
      hide(els.offerLeft);
    }
    if (els.offerEnd) els.offerEnd.disabled = false;
    show(els.offerLive);
  }

  function apply(o) {
    offer = o || null;
    if (offer) {
      if (offer.code) {
        knownCode = { endsAt: offer.ends_at, code: offer.code };
      } else if (pendingCode && (!knownCode || knownCode.endsAt !== offer.ends_at)) {
        // The offer this page just started: limited offers hide the code from everyone.
        knownCode = { endsAt: offer.ends_at, code: pendingCode };
        pendingCode = null;
      }
    } else {
      knownCode = null;
    }
    render();
    if (offer && !offerTimer) offerTimer = setInterval(render, 1000);
  }

  function onStart(event) {
    event.preventDefault();
    var code = (els.offerCodeInput.value || "").trim();
    // Single-use codes, pasted one per line (or comma-separated, as a shop's CSV column).
    var codes = (els.offerCodes && els.offerCodes.value || "").split(/[\s,;]+/).filter(Boolean);
    codes = codes.filter(function (c, i) { return codes.indexOf(c) === i; });
    if (!code && !codes.length) {
      els.offerCodeInput.focus();
      return;
    }
    var msg = { type: "start_offer", minutes: Number(els.offerMinutes.value) || 10 };
    if (code) msg.code = code;
    if (codes.length) msg.codes = codes.slice(0, CODES_PER_MESSAGE);
    var q = (els.offerQuantity && els.offerQuantity.value || "").trim();
    if (q) {
      var n = Math.floor(Number(q));
      if (!(n >= 1 && n <= 100000)) {
        els.offerQuantity.focus();
        return;
      }
      msg.quantity = n;
    }
    if (!page.send(msg)) return;
    // The rest of the codes follow in messages of at most 200 (a frame is 4 KiB at most).
    for (var i = CODES_PER_MESSAGE; i < codes.length; i += CODES_PER_MESSAGE) {
      page.send({ type: "add_codes", codes: codes.slice(i, i + CODES_PER_MESSAGE) });
    }
    pendingCode = code || null;
    els.offerCodeInput.value = "";
    if (els.offerCodes) els.offerCodes.value = "";
    if (els.offerQuantity) els.offerQuantity.value = "";
  }

  function wire() {
    if (els.offerForm) els.offerForm.addEventListener("submit", onStart);
    wireCodesFile(d);
    if (els.offerEnd) {
      els.offerEnd.addEventListener("click", function () {
        page.send({ type: "end_offer" });
      });
    }
  }

  return {
    apply: apply,
    render: render,
    // The server refused something: whatever it was, a pending offer did not start.
    refused: function () {
      pendingCode = null;
    },
    wire: wire
  };
}
