// The moderation panel's show controls: product pins, opening, closing and slowing the chat.
// Staff also write in the chat from here.
import { text } from "../dom.js";
import { plural } from "../words.js";

// page: {panel, d, els, send, list} of the moderation panel (moderation.js).
export function showControls(page) {
  var d = page.d;
  var els = page.els;
  var chatOpen = true;
  var pinnedProduct = null;

  function applyProduct(p) {
    pinnedProduct = p ? p.id : null;
    if (els.lineup) {
      els.lineup.querySelectorAll(".pin-product").forEach(function (b) {
        var on = pinnedProduct !== null && b.dataset.productId === String(pinnedProduct);
        b.classList.toggle("is-pinned", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
        var li = b.closest(".studio-product");
        if (li) li.classList.toggle("is-pinned", on);
        text(b.querySelector(".pin-label"), on ? d.msgPinned : d.msgPin);
      });
    }
    if (els.unpinProduct) els.unpinProduct.disabled = pinnedProduct === null;
  }

  function applyChatState(s) {
    chatOpen = !s || s.open !== false;
    if (els.chatToggle) {
      text(els.chatToggle, chatOpen ? d.msgCloseChat : d.msgOpenChat);
      els.chatToggle.setAttribute("aria-pressed", chatOpen ? "false" : "true");
      els.chatToggle.classList.toggle("ghost", !chatOpen);
    }
    text(els.chatState, chatOpen ? d.msgChatOpen : d.msgChatClosed);
    if (els.chatState) els.chatState.classList.toggle("is-closed", !chatOpen);
    page.panel.classList.toggle("chat-closed", !chatOpen);
    if (els.slow) {
      var secs = String(Math.max(0, Number(s && s.slow_mode) || 0));
      var has = Array.prototype.some.call(els.slow.options, function (o) { return o.value === secs; });
      if (!has) {
        var opt = document.createElement("option");
        opt.value = secs;
        opt.textContent = plural(d, "msgSeconds", Number(secs));
        els.slow.appendChild(opt);
      }
      els.slow.value = secs;
    }
  }

  function on(el, type, listener) {
    if (el) el.addEventListener(type, listener);
  }

  function wire() {
    on(els.lineup, "click", function (event) {
      var b = event.target.closest(".pin-product");
      if (!b) return;
      var id = Number(b.dataset.productId);
      if (isFinite(id)) page.send({ type: "pin_product", product: id });
    });
    on(els.unpinProduct, "click", function () {
      page.send({ type: "unpin_product" });
    });
    on(els.unpinMessage, "click", function () {
      page.send({ type: "unpin_message" });
    });
    on(els.chatToggle, "click", function () {
      page.send({ type: "set_chat", open: !chatOpen });
    });
    on(els.slow, "change", function () {
      page.send({ type: "slow_mode", seconds: Number(els.slow.value) || 0 });
    });
    if (els.sayForm && els.sayInput) {
      els.sayForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var value = els.sayInput.value.trim();
        if (!value) return;
        if (page.send({ type: "chat", text: value })) {
          els.sayInput.value = "";
          page.list.scrollToBottom();
        }
      });
    }
  }

  return { applyProduct: applyProduct, applyChatState: applyChatState, wire: wire };
}
