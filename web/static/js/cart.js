// The in-show cart (docs/player.md): "Add to cart" on the pinned card, the line-up or
// the replay's card puts the product in a cart kept in this browser
// (cart/store.js) and opens it as a bottom sheet; the page never leaves the show and the
// video keeps playing above the sheet. "Details" opens the product in a sheet too.
// "Checkout" is a plain link to the shop: the server builds it for the shop's platform
// (GET data-checkout-url?items=id:qty,..., appliance/cart/checkout.py) each time the cart
// changes, and the tap reports `checkout` (kpi.js); add_to_cart is reported by kpi.js.
// For browser tests: body[data-cart-count] is the number of items in the cart and
// body[data-checkout-url] the first checkout link.
import { $, make, noticeLine, safeUrl, setLink, text } from "./dom.js";
import { send } from "./kpi.js";
import { checkoutLinks } from "./cart/checkout.js";
import { cartStore } from "./cart/store.js";
import { togglePip, tools } from "./cart/tools.js";

function start(holder) {
  var d = holder.dataset;
  var video = $("player") || $("replay");
  var store = cartStore();
  var notice = noticeLine($("tool-notice"), 2500);
  var sheet = $("cart-sheet");
  var productSheet = $("product-sheet");
  var money = null;
  try {
    money = new Intl.NumberFormat(d.lang || undefined, { style: "currency", currency: d.currency });
  } catch (err) {
    money = null;
  }
  var refreshCheckout = checkoutLinks(d, store);

  // ---- what a product is, from the page ------------------------------------------------

  // The line-up's item for a product id: name, price, image, description.
  function lineupItem(id) {
    return document.querySelector('#lineup li.product[data-product-id="' + id + '"]');
  }

  function productOf(el) {
    var holderEl = el.closest("[data-product-id]");
    if (!holderEl) return null;
    var id = Number(holderEl.dataset.productId);
    if (!(id > 0)) return null;
    var src = lineupItem(id) || holderEl;
    var s = src.dataset;
    var name = s.name || text0(holderEl.querySelector(".pinned-name, h3, .chapter-name"));
    return {
      id: id,
      name: name,
      price: Number(s.price) || 0,
      currency: s.currency || d.currency,
      priceText: s.priceText || text0(holderEl.querySelector(".price")),
      image: s.image || "",
      description: s.description || "",
      shopUrl: detailsLink(holderEl) || detailsLink(src)
    };
  }

  function text0(el) {
    return el ? el.textContent.trim() : "";
  }

  function detailsLink(el) {
    var a = el && el.querySelector('a[data-kpi="product_click"]');
    return a && a.getAttribute("href") && a.getAttribute("href") !== "#" ? a.href : "";
  }

  // ---- the cart sheet -------------------------------------------------------------------

  function formatted(minor) {
    if (!money) return (minor / 100).toFixed(2) + " " + d.currency;
    var digits = money.resolvedOptions().maximumFractionDigits;
    return money.format(minor / Math.pow(10, digits));
  }

  function render() {
    var lines = store.lines();
    var count = store.count();
    var badge = $("cart-count");
    text(badge, count);
    badge.hidden = count === 0;
    $("cart-open").setAttribute("aria-label", d.msgCartCount.replace("{n}", count));
    document.body.dataset.cartCount = String(count);
    var list = $("cart-items");
    list.textContent = "";
    var total = 0;
    lines.forEach(function (l) {
      if (l.currency === d.currency) total += l.price * l.qty;
      list.appendChild(lineRow(l));
    });
    $("cart-empty").hidden = lines.length > 0;
    $("cart-total-row").hidden = lines.length === 0;
    text($("cart-total"), formatted(total));
    refreshCheckout();
  }

  function qtyButton(label, symbol, onClick) {
    var b = make("button", "qty-button", symbol);
    b.type = "button";
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function lineRow(l) {
    var li = make("li", "cart-line");
    li.dataset.productId = String(l.id);
    var src = safeUrl(l.image);
    if (src) {
      var img = make("img", "cart-img");
      img.alt = "";
      img.width = 48;
      img.height = 48;
      img.src = src;
      li.appendChild(img);
    }
    var body = make("div", "cart-line-body");
    body.appendChild(make("p", "cart-line-name", l.name));
    body.appendChild(make("p", "price", l.priceText));
    li.appendChild(body);
    var qty = make("div", "cart-qty");
    qty.appendChild(
      qtyButton(d.msgLess.replace("{name}", l.name), "\u2212", function () {
        store.setQty(l.id, l.qty - 1);
      })
    );
    var n = make("output", "qty", l.qty);
    qty.appendChild(n);
    qty.appendChild(
      qtyButton(d.msgMore.replace("{name}", l.name), "+", function () {
        store.setQty(l.id, l.qty + 1);
      })
    );
    qty.appendChild(
      qtyButton(d.msgRemove.replace("{name}", l.name), "\u00d7", function () {
        store.setQty(l.id, 0);
      })
    );
    li.appendChild(qty);
    return li;
  }

  var reported = false;
  function onCheckout() {
    // One report per cart handed over (the one-by-one links of a cart count once).
    if (!reported) {
      reported = true;
      send("checkout", {
        products: store.lines().map(function (l) { return [l.id, l.qty]; }),
        total: 0
      });
    }
    togglePip(video, true); // the show keeps playing while the viewer pays
  }

  // ---- sheets ---------------------------------------------------------------------------

  var opener = null;
  function open(el, from) {
    closeAll();
    opener = from || null;
    el.hidden = false;
    document.body.classList.add("sheet-open");
    var close = el.querySelector(".sheet-close");
    if (close) close.focus({ preventScroll: true });
  }

  function closeAll() {
    [sheet, productSheet].forEach(function (s) { if (s) s.hidden = true; });
    document.body.classList.remove("sheet-open");
  }

  function close() {
    closeAll();
    if (opener && opener.focus) opener.focus({ preventScroll: true });
    opener = null;
  }

  var shown = null; // the product in the details sheet
  function openDetails(p, from) {
    shown = p;
    productSheet.dataset.productId = String(p.id); // the shop's cart in the embed (embed_bridge.js)
    text($("product-sheet-name"), p.name);
    text($("product-sheet-price"), p.priceText);
    text($("product-sheet-description"), p.description);
    var media = $("product-sheet-media");
    media.textContent = "";
    var src = safeUrl(p.image);
    if (src) {
      var img = make("img", "product-sheet-img");
      img.alt = "";
      img.src = src;
      media.appendChild(img);
    }
    setLink($("product-sheet-shop"), safeUrl(p.shopUrl));
    var item = lineupItem(p.id);
    $("product-sheet-add").hidden = !!(item && item.dataset.soldOut);
    open(productSheet, from);
  }

  function add(p, from) {
    if (store.add({
      id: p.id, name: p.name, price: p.price, currency: p.currency,
      priceText: p.priceText, image: p.image
    })) {
      reported = false; // a new cart to hand over
      notice(d.msgAdded);
    }
    open(sheet, from);
  }

  // Taps on the page's shop links: kept in the show (kpi.js reports them on the way).
  document.addEventListener("click", function (event) {
    var a = event.target.closest ? event.target.closest("a[data-kpi]") : null;
    if (!a) return;
    var kind = a.dataset.kpi;
    if (kind !== "add_to_cart" && kind !== "product_click") return;
    var p = productOf(a);
    if (!p) return;
    event.preventDefault();
    if (kind === "add_to_cart") add(p, a);
    else openDetails(p, a);
  });

  $("product-sheet-add").addEventListener("click", function () {
    if (!shown) return;
    send("add_to_cart", { product: shown.id, quantity: 1, price: Math.max(0, shown.price) });
    add(shown, $("product-sheet-add"));
  });
  $("cart-open").addEventListener("click", function () {
    if (sheet.hidden) open(sheet, $("cart-open"));
    else close();
  });
  $("cart-close").addEventListener("click", close);
  $("product-sheet-close").addEventListener("click", close);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.body.classList.contains("sheet-open")) close();
  });
  $("cart-checkout").addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("a[href]")) onCheckout();
  });

  store.onChange(render);
  render();
  tools(video, notice, d);
}

var holder = document.getElementById("player-tools");
if (holder && holder.dataset.checkoutUrl) start(holder);
