// The show page's timed offer: countdown, the code (shared or claimed), codes left, copying.
import { hide, show, text } from "../dom.js";
import { clock, format, plural } from "../words.js";

// page: {d, els, send, notice} of the show page (chat.js).
export function offerPanel(page) {
  var d = page.d;
  var els = page.els;
  var offer = null;
  var myCode = null; // the code this viewer claimed for the current offer
  var offerTimer = null;
  var claimTimer = null;

  function codeKey(o) {
    return "vitrine.offer." + (d.showId || "") + "." + o.ends_at;
  }
  function rememberCode(o, code) {
    try {
      window.sessionStorage.setItem(codeKey(o), code);
    } catch (err) {
      /* no storage: the code stays on screen until the page goes */
    }
  }
  function recalledCode(o) {
    try {
      return window.sessionStorage.getItem(codeKey(o));
    } catch (err) {
      return null;
    }
  }

  function stop() {
    clearInterval(offerTimer);
    offerTimer = null;
    hide(els.offer);
  }

  function render() {
    if (!offer || !els.offer) {
      stop();
      return;
    }
    var left = Number(offer.ends_at) - Date.now() / 1000;
    if (!(left > 0)) {
      offer = null;
      stop();
      return;
    }
    text(els.offerEnds, format(d.msgOfferEnds, { t: clock(left) }));
    var code = offer.code || myCode;
    var remaining = offer.remaining === null || offer.remaining === undefined ? null : Number(offer.remaining);
    if (code) {
      text(els.offerCode, code);
      show(els.offerCodeWrap);
      hide(els.offerClaim);
      hide(els.offerGone);
    } else {
      hide(els.offerCodeWrap);
      if (remaining === null || remaining > 0) {
        show(els.offerClaim);
        hide(els.offerGone);
      } else {
        hide(els.offerClaim);
        text(els.offerGone, d.msgOfferGone);
        show(els.offerGone);
      }
    }
    if (offer.quantity !== null && offer.quantity !== undefined && remaining !== null) {
      text(els.offerLeft, plural(d, "msgOfferLeft", Math.max(0, remaining)));
      show(els.offerLeft);
    } else {
      hide(els.offerLeft);
    }
    show(els.offer);
  }

  function apply(o) {
    if (!o) {
      offer = null;
      myCode = null;
      stop();
      return;
    }
    if (!offer || offer.ends_at !== o.ends_at) {
      myCode = recalledCode(o);
      if (els.offerClaim) els.offerClaim.disabled = false;
    }
    offer = o;
    if (o.code) myCode = null; // the same code for everyone
    render();
    if (!offerTimer && offer) offerTimer = setInterval(render, 1000);
  }

  function onCode(code) {
    if (!code) return;
    myCode = String(code);
    if (offer) rememberCode(offer, myCode);
    clearTimeout(claimTimer);
    if (els.offerClaim) els.offerClaim.disabled = false;
    render();
  }

  // The server says every code is taken.
  function onGone() {
    clearTimeout(claimTimer);
    if (els.offerClaim) els.offerClaim.disabled = false;
    if (offer) {
      offer.remaining = 0;
      render();
    }
  }

  function onClaim() {
    if (!offer || !els.offerClaim) return;
    if (!page.send({ type: "claim_offer" })) {
      page.notice(d.msgNotSent || d.msgReconnecting);
      return;
    }
    els.offerClaim.disabled = true;
    clearTimeout(claimTimer);
    claimTimer = setTimeout(function () {
      if (els.offerClaim) els.offerClaim.disabled = false;
    }, 5000);
  }

  function onCopy() {
    var code = els.offerCode ? els.offerCode.textContent : "";
    if (!code || !navigator.clipboard) return;
    navigator.clipboard.writeText(code).then(
      function () {
        text(els.offerCopy, d.msgCopied);
        setTimeout(function () { text(els.offerCopy, d.msgCopy); }, 2000);
      },
      function () { /* refused: the code can still be selected by hand */ }
    );
  }

  function wire() {
    if (els.offerClaim) els.offerClaim.addEventListener("click", onClaim);
    if (els.offerCopy) {
      if (navigator.clipboard && window.isSecureContext) {
        show(els.offerCopy);
        els.offerCopy.addEventListener("click", onCopy);
      } else {
        hide(els.offerCopy);
      }
    }
  }

  return { apply: apply, onCode: onCode, onGone: onGone, wire: wire };
}
