// The cart sheet's checkout: the server's hand-off links for the cart as it is now.
// GET data-checkout-url?items=id:qty,... (appliance/cart/checkout.py) answers the links by
// the shop's platform: one (Shopify, a custom {items} template) or one per product
// (WooCommerce from Vitrine's own page), and the total priced by the catalogue.
// The offer code the viewer holds (the offer box shows it: the show's code, or the
// single-use code they claimed) goes along as &discount=, so the shop applies it at
// checkout where its platform takes one in a link (Shopify's /discount/<code>?redirect=).
import { $, make, safeUrl, setLink, text } from "../dom.js";

// d: the data-* of #player-tools; store: cart/store.js. Returns refresh().
export function checkoutLinks(d, store) {
  var links = []; // the checkout hand-offs for the cart as it is
  var asked = 0; // the generation of the last checkout request
  var sentCode = ""; // the discount code of the last request

  // The code shown in the offer box (chat/offer.js), while the offer runs.
  function heldCode() {
    var box = $("offer");
    var wrap = $("offer-code-wrap");
    var el = $("offer-code");
    var running = box && !box.hidden && wrap && !wrap.hidden && el;
    var code = running ? (el.textContent || "").trim() : "";
    return /^[A-Za-z0-9_-]{1,32}$/.test(code) ? code : "";
  }

  // Asks the server for the hand-off links of the cart as it is now.
  async function refreshCheckout() {
    var items = store.items();
    var box = $("cart-checkout");
    var gen = ++asked;
    if (!items) {
      links = [];
      box.hidden = true;
      delete document.body.dataset.checkoutUrl;
      return;
    }
    sentCode = heldCode();
    var query = "?items=" + encodeURIComponent(items);
    if (sentCode) query += "&discount=" + encodeURIComponent(sentCode);
    try {
      var r = await fetch(d.checkoutUrl + query, {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      });
      if (!r.ok) throw new Error("HTTP " + r.status);
      var body = await r.json();
      if (gen !== asked) return; // the cart changed meanwhile
      links = body.links || [];
      text($("cart-total"), body.total);
      showLinks();
    } catch (err) {
      if (gen === asked) box.hidden = true;
    }
  }

  function nameOf(id) {
    var line = store.lines().find(function (l) { return l.id === id; });
    return line ? line.name : "#" + id;
  }

  function showLinks() {
    var box = $("cart-checkout");
    var main = $("cart-checkout-link");
    var list = $("cart-handoffs");
    list.textContent = "";
    box.hidden = links.length === 0;
    if (!links.length) return;
    document.body.dataset.checkoutUrl = links[0].url;
    var several = links.length > 1;
    setLink(main, several ? null : safeUrl(links[0].url));
    $("cart-one-by-one").hidden = !several;
    list.hidden = !several;
    if (!several) return;
    links.forEach(function (h) {
      var li = make("li");
      var a = make("a", "button small", d.msgHandoff.replace("{name}", h.products.map(nameOf).join(", ")));
      a.href = safeUrl(h.url) || "#";
      a.rel = "noopener";
      a.target = "_blank";
      a.className = "button small checkout-link";
      li.appendChild(a);
      list.appendChild(li);
    });
  }

  // A code given (or an offer ended) while the cart holds items: the links follow it.
  var offerBox = $("offer");
  if (offerBox && window.MutationObserver) {
    new MutationObserver(function () {
      if (heldCode() !== sentCode && store.items()) refreshCheckout();
    }).observe(offerBox, { attributes: true, childList: true, subtree: true, characterData: true });
  }

  return refreshCheckout;
}
