// Vitrine live room, staff side: the moderation panel (#moderation) of the studio and of the
// admin show page. Pins products and messages, runs timed offers, opens, closes and slows
// the chat, deletes, mutes and bans, and keeps the queue of unanswered questions, over the
// same room websocket as the viewers (room.js, docs/protocol.md); the session cookie makes
// it staff. Every text comes translated from the data-* attributes of #moderation or from
// <template> rows; what people write is only ever inserted as text. For browser tests: body[data-room-state]
// holds the socket's state (connecting, open, reconnecting, closed), body[data-room-staff]
// is "true" once the server welcomed this page as staff, body[data-chat-count] and
// body[data-question-count] count the rows of the chat list and of the question queue.
"use strict";

(function () {
  var panel = document.getElementById("moderation");
  var Room = window.VitrineRoom;
  if (!panel || !Room || !panel.dataset.roomUrl) return;
  var d = panel.dataset;

  var MAX_MESSAGES = 200;
  var PEEK_MESSAGES = 4; // chat lines over the preview
  var PEEK_MS = 15000;
  var NOTICE_MS = 5000;
  var MUTE_MINUTES = 10;

  function $(id) {
    return document.getElementById(id);
  }
  var els = {
    conn: $("mod-conn"),
    viewers: $("mod-viewers"),
    notice: $("mod-notice"),
    controls: $("mod-controls"),
    lineup: $("studio-lineup"),
    unpinProduct: $("unpin-product"),
    questions: $("questions"),
    questionsEmpty: $("questions-empty"),
    chatToggle: $("chat-toggle"),
    chatState: $("mod-chat-state"),
    slow: $("slow-mode"),
    pinned: $("mod-pinned"),
    pinnedName: $("mod-pinned-name"),
    pinnedText: $("mod-pinned-text"),
    unpinMessage: $("unpin-message"),
    list: $("mod-messages"),
    more: $("mod-more"),
    sayForm: $("mod-chat-form"),
    sayInput: $("mod-chat-input"),
    offerLive: $("mod-offer-live"),
    offerCode: $("mod-offer-code"),
    offerEnds: $("mod-offer-ends"),
    offerLeft: $("mod-offer-left"),
    offerEnd: $("offer-end"),
    offerForm: $("offer-form"),
    offerCodeInput: $("offer-code-input"),
    offerMinutes: $("offer-minutes"),
    offerQuantity: $("offer-quantity"),
    peek: $("studio-chat"),
    messageTpl: $("mod-message-template"),
    questionTpl: $("mod-question-template"),
    sanctions: $("sanctions"),
    sanctionsEmpty: $("sanctions-empty"),
    sanctionTpl: $("mod-sanction-template")
  };
  var text = Room.text;
  var show = Room.show;
  var hide = Room.hide;
  var notice = Room.noticeLine(els.notice, NOTICE_MS);
  if (!els.list || !els.messageTpl) return;

  var room = null;
  var connected = false;
  var staff = false;
  var chatOpen = true;
  var pinnedProduct = null;
  var pinnedMessageId = null;
  var offer = null;
  var pendingCode = null; // sent with start_offer, not seen in an offer yet
  var knownCode = null; // {endsAt, code}: the code of the current offer, when known
  var offerTimer = null;
  var messages = {}; // id -> the chat message, for the names in confirmations

  function fmt(template, vars) {
    return Room.format(template, vars);
  }
  function send(obj) {
    if (room && room.send(obj)) return true;
    notice(d.msgNotSent || d.msgReconnecting);
    return false;
  }
  function idOf(el) {
    var li = el && el.closest("li[data-id]");
    if (!li) return null;
    var n = Number(li.dataset.id);
    return isFinite(n) ? n : li.dataset.id;
  }


  function renderEnabled() {
    if (els.controls) els.controls.disabled = !(connected && staff);
    document.body.dataset.roomStaff = staff ? "true" : "false";
  }

  // ---- chat list -------------------------------------------------------------------------

  function atBottom() {
    var l = els.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 32;
  }
  function scrollToBottom() {
    els.list.scrollTop = els.list.scrollHeight;
    hide(els.more);
  }
  function findIn(list, id) {
    if (!list || id === null || id === undefined) return null;
    var items = list.children;
    for (var i = items.length - 1; i >= 0; i--) {
      if (items[i].dataset.id === String(id)) return items[i];
    }
    return null;
  }
  function updateCounts() {
    document.body.dataset.chatCount = String(els.list.children.length);
    var q = els.questions ? els.questions.children.length : 0;
    document.body.dataset.questionCount = String(q);
    if (els.questionsEmpty) els.questionsEmpty.hidden = q > 0;
  }

  function fill(node, m) {
    text(node.querySelector(".msg-name"), m.name);
    text(node.querySelector(".msg-text"), m.text);
  }

  function renderMessage(m) {
    var li = els.messageTpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = String(m.id);
    fill(li, m);
    li.classList.toggle("is-staff", !!m.staff);
    li.classList.toggle("is-question", !!m.question);
    li.classList.toggle("is-answered", !!(m.question && m.answered));
    var drop = [];
    if (!m.staff) drop.push(".staff");
    if (!m.question) drop.push(".question");
    if (!(m.question && m.answered)) drop.push(".answered");
    // Mute and ban are for viewers; staff messages can only be pinned or deleted.
    if (m.staff) drop.push("[data-action=mute]", "[data-action=ban]", "[data-action=ban-address]");
    drop.forEach(function (sel) {
      var el = li.querySelector(sel);
      if (el) el.parentNode.removeChild(el);
    });
    markPinned(li, pinnedMessageId !== null && String(pinnedMessageId) === String(m.id));
    return li;
  }

  function markPinned(li, on) {
    if (!li) return;
    li.classList.toggle("is-pinned", on);
    var b = li.querySelector("[data-action=pin]");
    if (b) {
      b.setAttribute("aria-pressed", on ? "true" : "false");
      text(b, on ? d.msgPinned : d.msgPin);
    }
  }

  function addMessage(m, follow) {
    if (!m || m.id === undefined || findIn(els.list, m.id)) return;
    messages[m.id] = m;
    var stick = follow || atBottom();
    els.list.appendChild(renderMessage(m));
    while (els.list.children.length > MAX_MESSAGES) {
      var first = els.list.firstElementChild;
      delete messages[first.dataset.id];
      els.list.removeChild(first);
    }
    if (stick) scrollToBottom();
    else show(els.more);
    if (m.question && !m.answered) addQuestion(m);
  }

  function markAnswered(id) {
    var li = findIn(els.list, id);
    if (li && !li.classList.contains("is-answered")) {
      li.classList.add("is-answered");
      var b = els.messageTpl.content.querySelector(".answered");
      var textEl = li.querySelector(".msg-text");
      if (b && textEl) {
        textEl.parentNode.insertBefore(b.cloneNode(true), textEl);
        textEl.parentNode.insertBefore(document.createTextNode(" "), textEl);
      }
    }
    if (messages[id]) messages[id].answered = true;
    removeQuestion(id);
  }

  function removeMessage(id) {
    var li = findIn(els.list, id);
    if (li) li.parentNode.removeChild(li);
    delete messages[id];
    removeQuestion(id);
    removePeek(id);
    if (pinnedMessageId !== null && String(pinnedMessageId) === String(id)) applyPinnedMessage(null);
  }

  // ---- question queue (oldest first) -----------------------------------------------------

  function addQuestion(m) {
    if (!els.questions || !els.questionTpl || findIn(els.questions, m.id)) return;
    var li = els.questionTpl.content.firstElementChild.cloneNode(true);
    li.dataset.id = String(m.id);
    fill(li, m);
    var before = null;
    var items = els.questions.children;
    for (var i = 0; i < items.length; i++) {
      if (Number(items[i].dataset.id) > Number(m.id)) {
        before = items[i];
        break;
      }
    }
    els.questions.insertBefore(li, before);
  }

  function removeQuestion(id) {
    var li = findIn(els.questions, id);
    if (li) li.parentNode.removeChild(li);
  }

  // ---- the latest lines over the preview -------------------------------------------------

  function addPeek(m) {
    if (!els.peek) return;
    var li = document.createElement("li");
    li.dataset.id = String(m.id);
    if (m.question) li.className = "is-question";
    var name = document.createElement("strong");
    name.textContent = m.name;
    li.appendChild(name);
    li.appendChild(document.createTextNode(" " + m.text));
    els.peek.appendChild(li);
    while (els.peek.children.length > PEEK_MESSAGES) els.peek.removeChild(els.peek.firstElementChild);
    setTimeout(function () {
      if (li.parentNode) li.parentNode.removeChild(li);
    }, PEEK_MS);
  }
  function removePeek(id) {
    var li = findIn(els.peek, id);
    if (li) li.parentNode.removeChild(li);
  }

  // ---- pinned message, product, chat state -----------------------------------------------

  function applyPinnedMessage(m) {
    var old = pinnedMessageId;
    pinnedMessageId = m ? m.id : null;
    if (old !== null) markPinned(findIn(els.list, old), false);
    if (!m) {
      hide(els.pinned);
      return;
    }
    markPinned(findIn(els.list, m.id), true);
    text(els.pinnedName, m.name);
    text(els.pinnedText, m.text);
    show(els.pinned);
  }

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
    panel.classList.toggle("chat-closed", !chatOpen);
    if (els.slow) {
      var secs = String(Math.max(0, Number(s && s.slow_mode) || 0));
      var has = Array.prototype.some.call(els.slow.options, function (o) { return o.value === secs; });
      if (!has) {
        var opt = document.createElement("option");
        opt.value = secs;
        opt.textContent = Room.plural(d, "msgSeconds", Number(secs));
        els.slow.appendChild(opt);
      }
      els.slow.value = secs;
    }
  }

  // ---- offer -----------------------------------------------------------------------------

  function renderOffer() {
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
      renderOffer();
      return;
    }
    var code = offer.code || (knownCode && knownCode.endsAt === offer.ends_at ? knownCode.code : "");
    text(els.offerCode, code);
    if (els.offerCode) els.offerCode.hidden = !code;
    text(els.offerEnds, fmt(d.msgOfferEnds, { t: Room.clock(left) }));
    var hasQty = offer.quantity !== null && offer.quantity !== undefined;
    if (hasQty) {
      var remaining = offer.remaining === null || offer.remaining === undefined ? offer.quantity : offer.remaining;
      text(
        els.offerLeft,
        Room.plural(d, "msgOfferLeft", Math.max(0, Number(remaining))) + " · " +
          Room.plural(d, "msgOfferLimited", Number(offer.quantity))
      );
      show(els.offerLeft);
    } else {
      hide(els.offerLeft);
    }
    if (els.offerEnd) els.offerEnd.disabled = false;
    show(els.offerLive);
  }

  function applyOffer(o) {
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
    renderOffer();
    if (offer && !offerTimer) offerTimer = setInterval(renderOffer, 1000);
  }

  function onStartOffer(event) {
    event.preventDefault();
    var code = (els.offerCodeInput.value || "").trim();
    if (!code) {
      els.offerCodeInput.focus();
      return;
    }
    var msg = { type: "start_offer", code: code, minutes: Number(els.offerMinutes.value) || 10 };
    var q = (els.offerQuantity && els.offerQuantity.value || "").trim();
    if (q) {
      var n = Math.floor(Number(q));
      if (!(n >= 1 && n <= 100000)) {
        els.offerQuantity.focus();
        return;
      }
      msg.quantity = n;
    }
    if (!send(msg)) return;
    pendingCode = code;
    els.offerCodeInput.value = "";
    if (els.offerQuantity) els.offerQuantity.value = "";
  }

  // ---- mutes and bans, with undo ---------------------------------------------------------

  function clock(unix) {
    return new Date(Number(unix) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function applySanctions(list) {
    if (!els.sanctions || !els.sanctionTpl) return;
    els.sanctions.textContent = "";
    (list || []).forEach(function (s) {
      var li = els.sanctionTpl.content.firstElementChild.cloneNode(true);
      li.dataset.id = String(s.id);
      li.dataset.kind = s.kind;
      text(li.querySelector(".sanction-kind"), s.kind === "ban" ? d.msgKindBan : d.msgKindMute);
      text(li.querySelector(".msg-name"), s.name);
      text(li.querySelector(".sanction-whole"), s.whole_address ? "(" + d.msgWholeAddress + ")" : "");
      var when = fmt(d.msgSince, { t: clock(s.since) }) + ", " +
        (s.until === null || s.until === undefined ? d.msgUntilUndone : fmt(d.msgUntil, { t: clock(s.until) }));
      text(li.querySelector(".sanction-when"), when);
      els.sanctions.appendChild(li);
    });
    if (els.sanctionsEmpty) els.sanctionsEmpty.hidden = els.sanctions.children.length > 0;
    document.body.dataset.sanctionCount = String(els.sanctions.children.length);
  }

  // ---- the server's messages -------------------------------------------------------------

  function setViewers(n) {
    var v = Number(n);
    text(els.viewers, isFinite(v) && n !== null && n !== undefined ? Room.plural(d, "msgViewers", v) : "");
  }

  function applyState(s) {
    els.list.textContent = "";
    if (els.questions) els.questions.textContent = "";
    messages = {};
    pinnedMessageId = s.pinned_message ? s.pinned_message.id : null;
    (s.messages || []).forEach(function (m) { addMessage(m, true); });
    (s.questions || []).forEach(function (m) {
      messages[m.id] = messages[m.id] || m;
      if (!m.answered) addQuestion(m);
    });
    scrollToBottom();
    applyPinnedMessage(s.pinned_message || null);
    applyProduct(s.product || null);
    applyOffer(s.offer || null);
    setViewers(s.viewers);
    applyChatState(s.chat || { open: true, slow_mode: 0 });
  }

  function onMessage(m) {
    switch (m.type) {
      case "welcome":
        staff = !!m.staff;
        panel.dataset.role = m.role || "";
        renderEnabled();
        if (!staff) notice(d.msgNotStaff, 0);
        else if (els.notice && els.notice.textContent === d.msgNotStaff) notice(null);
        break;
      case "state":
        applyState(m);
        break;
      case "chat":
        addMessage(m, false);
        addPeek(m);
        break;
      case "deleted":
        removeMessage(m.id);
        break;
      case "answered":
        markAnswered(m.id);
        break;
      case "pinned_message":
        applyPinnedMessage(m.message || null);
        break;
      case "product":
        applyProduct(m.product || null);
        break;
      case "offer":
        applyOffer(m.offer || null);
        break;
      case "chat_state":
        applyChatState(m);
        break;
      case "viewers":
        setViewers(m.count);
        break;
      case "sanctions":
        applySanctions(m.sanctions);
        break;
      case "notice":
        pendingCode = null; // whatever was refused, a pending offer did not start
        if (m.text) notice(m.text);
        break;
      default:
        break; // pong, hearts, status (studio.js follows the show's status)
    }
    updateCounts();
  }

  function onState(s) {
    document.body.dataset.roomState = s;
    connected = s === "open";
    if (!connected) staff = false; // until the next welcome
    renderEnabled();
    var label = s === "connecting" ? d.msgConnecting : s === "reconnecting" ? d.msgReconnecting : "";
    text(els.conn, label);
    if (els.conn) els.conn.hidden = !label;
  }

  // ---- wiring ----------------------------------------------------------------------------

  function onListClick(event) {
    var b = event.target.closest("button[data-action]");
    if (!b || !els.list.contains(b)) return;
    var id = idOf(b);
    if (id === null) return;
    var m = messages[id] || {};
    switch (b.dataset.action) {
      case "pin":
        if (pinnedMessageId !== null && String(pinnedMessageId) === String(id)) send({ type: "unpin_message" });
        else send({ type: "pin_message", id: id });
        break;
      case "delete":
        send({ type: "delete", id: id });
        break;
      case "mute":
        if (send({ type: "mute", id: id, minutes: MUTE_MINUTES })) {
          notice(fmt(d.msgMutedDone, { name: m.name || "" }));
        }
        break;
      case "ban":
        if (window.confirm(fmt(d.msgConfirmBan, { name: m.name || "" }))) send({ type: "ban", id: id });
        break;
      case "ban-address":
        if (window.confirm(fmt(d.msgConfirmBanAddress, { name: m.name || "" }))) {
          send({ type: "ban", id: id, address: true });
        }
        break;
      default:
        break;
    }
  }

  function wire() {
    els.list.addEventListener("click", onListClick);
    els.list.addEventListener("scroll", function () {
      if (atBottom()) hide(els.more);
    });
    if (els.more) els.more.addEventListener("click", scrollToBottom);
    if (els.questions) {
      els.questions.addEventListener("click", function (event) {
        var b = event.target.closest("button[data-action=answer]");
        if (!b) return;
        var id = idOf(b);
        if (id !== null && send({ type: "answer", id: id })) {
          b.disabled = true; // the row leaves on "answered"; if refused, it can be tried again
          setTimeout(function () { b.disabled = false; }, 5000);
        }
      });
    }
    if (els.lineup) {
      els.lineup.addEventListener("click", function (event) {
        var b = event.target.closest(".pin-product");
        if (!b) return;
        var id = Number(b.dataset.productId);
        if (isFinite(id)) send({ type: "pin_product", product: id });
      });
    }
    if (els.unpinProduct) {
      els.unpinProduct.addEventListener("click", function () {
        send({ type: "unpin_product" });
      });
    }
    if (els.unpinMessage) {
      els.unpinMessage.addEventListener("click", function () {
        send({ type: "unpin_message" });
      });
    }
    if (els.chatToggle) {
      els.chatToggle.addEventListener("click", function () {
        send({ type: "set_chat", open: !chatOpen });
      });
    }
    if (els.slow) {
      els.slow.addEventListener("change", function () {
        send({ type: "slow_mode", seconds: Number(els.slow.value) || 0 });
      });
    }
    if (els.sanctions) {
      els.sanctions.addEventListener("click", function (event) {
        var b = event.target.closest("button[data-action=lift]");
        if (!b) return;
        var id = idOf(b);
        if (id !== null) send({ type: "lift", id: id });
      });
    }
    if (els.offerForm) els.offerForm.addEventListener("submit", onStartOffer);
    if (els.offerEnd) {
      els.offerEnd.addEventListener("click", function () {
        send({ type: "end_offer" });
      });
    }
    if (els.sayForm && els.sayInput) {
      els.sayForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var value = els.sayInput.value.trim();
        if (!value) return;
        if (send({ type: "chat", text: value })) {
          els.sayInput.value = "";
          scrollToBottom();
        }
      });
    }
  }

  wire();
  updateCounts();
  renderEnabled();
  applyProduct(null);
  renderOffer();
  room = Room.connect(d.roomUrl, {
    name: null,
    onMessage: onMessage,
    onState: onState
  });
})();
