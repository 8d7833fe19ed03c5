// The player's side of the shop's page (docs/embed.md). Loaded only on a show page opened
// with ?embed=1 inside the shop's site by /embed.js, before the page's other scripts.
// - "Add to cart" (any [data-kpi="add_to_cart"] with a [data-product-id] around it) is not
//   followed here, nor put in the in-show cart: the product goes to
//   the shop's page as a message, which adds it to the shop's own cart and answers with
//   whether that worked; the answer is shown over the player. The click is taken on <html>
//   as it bubbles: kpi.js (document, capture) has reported it, the in-show cart (document,
//   bubble) never sees it.
// - "Checkout" ([data-checkout], the in-show cart's #cart-checkout links) asks the shop's
//   page to go to its cart page.
// - The replay's position is sent to the page, so the miniplayer resumes after a navigation.
// Messages go only to the parent page's origin, and only when that origin is one the server
// lists in <meta name="vitrine-embed-origins"> (the same list as the page's frame-ancestors);
// answers are read only from that window and origin. Nothing secret is sent: product ids,
// SKUs, prices, the show's id.

var meta = document.querySelector('meta[name="vitrine-embed-origins"]');
var allowed = meta ? meta.content.split(" ").filter(Boolean) : [];
var root = document.querySelector("[data-show-id]");
var showId = root ? Number(root.dataset.showId) : 0;

function parentOrigin() {
  if (window.parent === window) return "";
  var list = window.location.ancestorOrigins;
  if (list && list.length) return list[0];
  try {
    return new URL(document.referrer).origin;
  } catch (err) {
    return "";
  }
}

var parent = parentOrigin();
var linked = parent !== "" && allowed.indexOf(parent) >= 0;
var products = {};
var pending = {};
var nextId = 1;
var toast = null;

function post(message) {
  if (linked) window.parent.postMessage(message, parent);
}

function say(text, ok) {
  if (!toast) {
    toast = document.createElement("p");
    toast.className = "embed-toast";
    toast.setAttribute("role", "status");
    toast.setAttribute("aria-live", "polite");
    document.body.appendChild(toast);
  }
  toast.textContent = text;
  toast.classList.toggle("bad", !ok);
  toast.hidden = false;
  window.clearTimeout(say.timer);
  say.timer = window.setTimeout(function () {
    toast.hidden = true;
  }, 4000);
}

function loadProducts() {
  if (!showId) return;
  fetch("/embed/shows/" + showId + "/products.json", { credentials: "same-origin" })
    .then(function (r) {
      return r.ok ? r.json() : { products: [] };
    })
    .then(function (data) {
      (data.products || []).forEach(function (p) {
        products[p.product_id] = p;
      });
      document.body.dataset.embedProducts = String((data.products || []).length); // tests
    })
    .catch(function () {});
}

function addToCart(event) {
  var el = event.target.closest
    ? event.target.closest('[data-kpi="add_to_cart"]')
    : null;
  if (!el) return false;
  var holder = el.closest("[data-product-id]");
  var p = holder ? products[Number(holder.dataset.productId)] : null;
  // Never leave the show: the shop's page adds the item (kpi.js has reported the tap).
  event.preventDefault();
  event.stopPropagation();
  if (p) ask(p);
  return true;
}

function ask(p) {
  var id = nextId++;
  pending[id] = true;
  document.body.dataset.embedAsked = String(id);
  post({
    type: "vitrine:add-to-cart",
    id: id,
    detail: {
      product_id: p.product_id,
      sku: p.sku,
      variant_id: p.variant_id,
      quantity: 1,
      price_minor: p.price_minor,
      currency: p.currency,
      show_id: showId
    }
  });
}

// "Add to cart" in the product sheet (cart.js): its own listener would put the product in
// the in-show cart, so the click is taken before it reaches the button; reported here.
function sheetAdd(event) {
  var el = event.target.closest ? event.target.closest("#product-sheet-add") : null;
  var sheet = el && el.closest("[data-product-id]");
  var p = sheet ? products[Number(sheet.dataset.productId)] : null;
  if (!p) return;
  event.preventDefault();
  event.stopPropagation();
  import("./kpi.js").then(function (kpi) {
    kpi.send("add_to_cart", { product: p.product_id, quantity: 1, price: p.price_minor });
  });
  ask(p);
}

function checkout(event) {
  var el = event.target.closest ? event.target.closest("[data-checkout], #cart-checkout a") : null;
  if (!el) return;
  event.preventDefault();
  event.stopPropagation();
  post({ type: "vitrine:checkout", show_id: showId });
}

function onClick(event) {
  if (!addToCart(event)) checkout(event);
}

function onMessage(event) {
  if (event.source !== window.parent || event.origin !== parent) return;
  var m = event.data;
  if (!m || m.type !== "vitrine:cart-result" || !pending[m.id]) return;
  delete pending[m.id];
  var text = typeof m.message === "string" ? m.message.slice(0, 200) : "";
  say(text, m.ok === true);
  document.body.dataset.embedCart = m.ok === true ? "added" : "failed";
}

function reportTime() {
  var video = document.getElementById("replay");
  if (!video) return;
  window.setInterval(function () {
    if (!video.paused) post({ type: "vitrine:time", show_id: showId, t: video.currentTime });
  }, 1000);
}

if (linked) {
  // kpi.js reports the join with this: channel `embed` and the shop page's host.
  try {
    document.body.dataset.embedHost = new URL(parent).host;
  } catch (err) {
    // no host to report
  }
  document.documentElement.addEventListener("click", onClick);
  window.addEventListener("click", sheetAdd, true);
  window.addEventListener("message", onMessage);
  loadProducts();
  reportTime();
  post({ type: "vitrine:ready", show_id: showId });
}
