// The show page's pinned product card over the stage; the viewer may close it.
import { hide, safeUrl, setLink, show, text } from "../dom.js";

function imageUrl(image) {
  if (typeof image !== "string" || !image) return null;
  if (image.charAt(0) === "/" || /^https?:\/\//i.test(image)) return safeUrl(image);
  return "/uploads/" + encodeURIComponent(image);
}

// page: {root, els} of the show page (chat.js).
export function productCard(page) {
  var root = page.root;
  var els = page.els;
  var product = null;
  var dismissed = null; // the viewer closed this product's card

  function apply(p) {
    if (!els.card) return;
    product = p || null;
    if (!product) {
      dismissed = null;
      hide(els.card);
      root.classList.remove("has-product");
      return;
    }
    text(els.cardName, product.name);
    text(els.cardPrice, product.price);
    if (els.cardMedia) {
      els.cardMedia.textContent = "";
      var src = imageUrl(product.image);
      if (src) {
        var img = document.createElement("img");
        img.className = "pinned-img";
        img.alt = "";
        img.width = 72;
        img.height = 72;
        img.src = src;
        els.cardMedia.appendChild(img);
        els.card.classList.remove("no-image");
      } else {
        els.card.classList.add("no-image");
      }
    }
    setLink(els.cardCart, safeUrl(product.cart_url));
    setLink(els.cardDetails, safeUrl(product.product_url));
    els.card.dataset.productId = String(product.id);
    els.card.dataset.price = String(product.price_minor); // for the add_to_cart report (kpi.js)
    if (dismissed !== null && dismissed !== product.id) dismissed = null;
    if (dismissed === product.id) {
      hide(els.card);
    } else {
      show(els.card);
      root.classList.add("has-product");
    }
  }

  function wire() {
    if (!els.cardClose) return;
    els.cardClose.addEventListener("click", function () {
      if (product) dismissed = product.id;
      hide(els.card);
      root.classList.remove("has-product");
    });
  }

  return { apply: apply, wire: wire };
}
