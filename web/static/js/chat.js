// Vitrine live room, viewer side: the chat, hearts, the pinned message, the pinned product
// card over the stage and the timed offer of a show page, over the room websocket
// (room.js, docs/protocol.md). Every text it shows comes translated from the data-*
// attributes of <article class="show"> or from the server's notices; what people write is
// only ever inserted as text. For browser tests: body[data-room-state] holds the socket's
// state (connecting, open, reconnecting, closed) and body[data-chat-count] the number of
// messages in the list.
"use strict";

(function () {
  var root = document.querySelector("article.show[data-room-url]");
  var Room = window.VitrineRoom;
  if (!root || !Room || !window.VitrineMessages) return;
  var d = root.dataset;

  var MAX_MESSAGES = 200;
  var MAX_FLOATING = 40; // hearts in the air at once
  var NOTICE_MS = 5000;
  var HEART_BATCH_MS = 300;
  var RESTORE_CODES = ["rate_limited", "too_long", "muted", "slow_mode", "chat_closed", "no_name"];

  function $(id) {
    return document.getElementById(id);
  }
  var els = {
    chat: $("chat"),
    list: $("chat-messages"),
    more: $("chat-more"),
    form: $("chat-form"),
    input: $("chat-input"),
    question: $("chat-question"),
    send: $("chat-send"),
    heart: $("heart"),
    hearts: $("hearts"),
    notice: $("chat-notice"),
    state: $("chat-state"),
    viewers: $("chat-viewers"),
    conn: $("chat-conn"),
    pinnedBar: $("chat-pinned"),
    pinnedName: $("chat-pinned-name"),
    pinnedText: $("chat-pinned-text"),
    nameForm: $("name-form"),
    nameInput: $("name-input"),
    offer: $("offer"),
    offerEnds: $("offer-ends"),
    offerCodeWrap: $("offer-code-wrap"),
    offerCode: $("offer-code"),
    offerCopy: $("offer-copy"),
    offerClaim: $("offer-claim"),
    offerGone: $("offer-gone"),
    offerLeft: $("offer-left"),
    card: $("pinned"),
    cardMedia: $("pinned-media"),
    cardName: $("pinned-name"),
    cardPrice: $("pinned-price"),
    cardCart: $("pinned-cart"),
    cardDetails: $("pinned-details"),
    cardClose: $("pinned-close")
  };
  var text = Room.text;
  var show = Room.show;
  var hide = Room.hide;
  var notice = Room.noticeLine(els.notice, NOTICE_MS);
  if (!els.chat || !els.list) return;

  var room = null;
  var welcomed = false;
  var staff = false;
  var named = false; // the server knows this viewer by a name
  var myName = Room.savedName();
  var banned = false;
  var chat = { open: true, slow: 0 };
  var pending = null; // a message waiting for a name
  var lastSent = null; // {msg, at}: put back in the input when the server refuses it
  var pinnedMessageId = null;

  var offer = null;
  var myCode = null; // the code this viewer claimed for the current offer
  var offerTimer = null;
  var claimTimer = null;

  var product = null;
  var dismissedProduct = null; // the viewer closed this product's card

  var heartsQueued = 0;
  var heartTimer = null;
  var heartLastSent = 0;

  var motion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

  function make(tag, cls, content) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content !== undefined && content !== null) el.textContent = String(content);
    return el;
  }
  function fmt(template, vars) {
    return Room.format(template, vars);
  }
  function send(obj) {
    return !!room && room.send(obj);
  }
  function reducedMotion() {
    return !!(motion && motion.matches);
  }
  // Links from the catalogue: only web addresses and paths of this site become links.
  function safeUrl(url) {
    if (typeof url !== "string" || !url) return null;
    if (/^https?:\/\//i.test(url)) return url;
    if (url.charAt(0) === "/" && url.charAt(1) !== "/") return url;
    return null;
  }
  function imageUrl(image) {
    if (typeof image !== "string" || !image) return null;
    if (image.charAt(0) === "/" || /^https?:\/\//i.test(image)) return safeUrl(image);
    return "/uploads/" + encodeURIComponent(image);
  }

  // ---- notices ---------------------------------------------------------------------------


  // ---- the message list ------------------------------------------------------------------

  function atBottom() {
    var l = els.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 32;
  }
  function scrollToBottom() {
    els.list.scrollTop = els.list.scrollHeight;
    hide(els.more);
  }
  function updateCount() {
    document.body.dataset.chatCount = String(els.list.children.length);
  }
  function find(id) {
    if (id === null || id === undefined) return null;
    var items = els.list.children;
    for (var i = items.length - 1; i >= 0; i--) {
      if (items[i].dataset.id === String(id)) return items[i];
    }
    return null;
  }

  var badge = window.VitrineMessages.badge;

  function markAnswered(li) {
    if (!li || li.classList.contains("is-answered")) return;
    li.classList.add("is-answered");
    var b = badge("answered", d.msgAnswered);
    var textEl = li.querySelector(".msg-text");
    li.insertBefore(b, textEl);
    li.insertBefore(document.createTextNode(" "), textEl);
  }

  function renderMessage(m) {
    var li = window.VitrineMessages.render(m, { staff: d.msgStaff, question: d.msgQuestion });
    if (m.question && m.answered) markAnswered(li);
    return li;
  }

  function addMessage(m, follow) {
    if (!m || m.id === undefined || find(m.id)) return;
    var stick = follow || atBottom();
    els.list.appendChild(renderMessage(m));
    while (els.list.children.length > MAX_MESSAGES) els.list.removeChild(els.list.firstElementChild);
    if (stick) scrollToBottom();
    else show(els.more);
  }

  function isMine(m) {
    return named && m && m.name === myName;
  }

  function removeMessage(id) {
    var li = find(id);
    if (li) li.parentNode.removeChild(li);
    if (pinnedMessageId !== null && String(pinnedMessageId) === String(id)) applyPinnedMessage(null);
  }

  function applyPinnedMessage(m) {
    if (!els.pinnedBar) return;
    if (!m) {
      pinnedMessageId = null;
      hide(els.pinnedBar);
      return;
    }
    pinnedMessageId = m.id;
    text(els.pinnedName, m.name);
    text(els.pinnedText, m.text);
    els.pinnedBar.classList.toggle("is-staff", !!m.staff);
    show(els.pinnedBar);
  }

  // ---- chat state, names, sending --------------------------------------------------------

  function renderChatState() {
    var closed = !chat.open || banned;
    if (els.input) els.input.disabled = closed;
    if (els.send) els.send.disabled = closed;
    if (els.question) els.question.disabled = closed;
    var label = "";
    if (banned) label = ""; // the notice says why
    else if (!chat.open) label = d.msgChatClosed || "";
    else if (chat.slow > 0 && !staff) label = Room.plural(d, "msgSlowMode", chat.slow);
    text(els.state, label);
    if (label) show(els.state);
    else hide(els.state);
    els.chat.classList.toggle("is-closed", closed);
    if (closed) hide(els.nameForm);
  }

  function applyChatState(s) {
    chat.open = !s || s.open !== false;
    var n = Number(s && s.slow_mode);
    chat.slow = isFinite(n) && n > 0 ? n : 0;
    renderChatState();
  }

  function hasName() {
    return staff || named;
  }

  function askName() {
    if (!els.nameForm || !els.nameInput || banned || !chat.open) return;
    if (!els.nameInput.value && myName) els.nameInput.value = myName;
    show(els.nameForm);
    els.nameInput.focus();
  }

  function sendChat(msg) {
    if (!send(msg)) {
      notice(d.msgNotSent || d.msgReconnecting);
      return false;
    }
    lastSent = { msg: msg, at: Date.now() };
    if (els.input) els.input.value = "";
    if (els.question) els.question.checked = false;
    return true;
  }

  function onSubmit(event) {
    event.preventDefault();
    if (!els.input || banned || !chat.open) return;
    var value = els.input.value.trim();
    if (!value) return;
    var msg = { type: "chat", text: value };
    if (els.question && els.question.checked) msg.question = true;
    if (!hasName()) {
      pending = msg;
      askName();
      return;
    }
    if (sendChat(msg)) scrollToBottom();
  }

  function onNameSubmit(event) {
    event.preventDefault();
    var value = els.nameInput.value.trim();
    if (!value) return;
    if (!send({ type: "set_name", name: value })) notice(d.msgNotSent || d.msgReconnecting);
  }

  function onNamed(name) {
    myName = name;
    named = true;
    Room.saveName(name);
    hide(els.nameForm);
    notice(null);
    if (pending) {
      var msg = pending;
      pending = null;
      if (sendChat(msg)) scrollToBottom();
    }
    if (els.input && !els.input.disabled) els.input.focus();
  }

  // ---- hearts ----------------------------------------------------------------------------

  function floatHearts(n) {
    if (!els.hearts || n <= 0) return;
    if (reducedMotion()) {
      // No flying: the button glows once instead.
      if (!els.heart) return;
      els.heart.classList.remove("is-glowing");
      void els.heart.offsetWidth; // restart the animation
      els.heart.classList.add("is-glowing");
      return;
    }
    n = Math.min(n, 12, MAX_FLOATING - els.hearts.children.length);
    for (var i = 0; i < n; i++) {
      var h = make("span", "float-heart");
      h.classList.add("fh-path-" + Math.floor(Math.random() * 6));
      h.classList.add("fh-color-" + Math.floor(Math.random() * 4));
      h.classList.add("fh-delay-" + (i % 6));
      var done = (function (el) {
        return function () {
          if (el.parentNode) el.parentNode.removeChild(el);
        };
      })(h);
      h.addEventListener("animationend", done);
      h.addEventListener("animationcancel", done);
      setTimeout(done, 4000); // in case no animation runs at all
      els.hearts.appendChild(h);
    }
  }

  function flushHearts() {
    heartTimer = null;
    if (!heartsQueued) return;
    var count = Math.min(heartsQueued, 10);
    heartsQueued -= count;
    send(count === 1 ? { type: "heart" } : { type: "heart", count: count });
    heartLastSent = Date.now();
    if (heartsQueued) heartTimer = setTimeout(flushHearts, HEART_BATCH_MS);
  }

  // One tap, one heart right away; a burst of taps travels as a few frames with a count.
  function onHeart() {
    floatHearts(1);
    heartsQueued++;
    if (heartTimer) return;
    var wait = HEART_BATCH_MS - (Date.now() - heartLastSent);
    if (wait <= 0) flushHearts();
    else heartTimer = setTimeout(flushHearts, wait);
  }

  // ---- pinned product --------------------------------------------------------------------

  function setLink(a, url) {
    if (!a) return;
    var safe = safeUrl(url);
    if (safe) {
      a.href = safe;
      show(a);
    } else {
      a.removeAttribute("href");
      hide(a);
    }
  }

  function applyProduct(p) {
    if (!els.card) return;
    product = p || null;
    if (!product) {
      dismissedProduct = null;
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
    setLink(els.cardCart, product.cart_url);
    setLink(els.cardDetails, product.product_url);
    els.card.dataset.productId = String(product.id);
    els.card.dataset.price = String(product.price_minor); // for the add_to_cart report (kpi.js)
    if (dismissedProduct !== null && dismissedProduct !== product.id) dismissedProduct = null;
    if (dismissedProduct === product.id) {
      hide(els.card);
    } else {
      show(els.card);
      root.classList.add("has-product");
    }
  }

  // ---- offer -----------------------------------------------------------------------------

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

  function stopOffer() {
    clearInterval(offerTimer);
    offerTimer = null;
    hide(els.offer);
  }

  function renderOffer() {
    if (!offer || !els.offer) {
      stopOffer();
      return;
    }
    var left = Number(offer.ends_at) - Date.now() / 1000;
    if (!(left > 0)) {
      offer = null;
      stopOffer();
      return;
    }
    text(els.offerEnds, fmt(d.msgOfferEnds, { t: Room.clock(left) }));
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
      text(els.offerLeft, Room.plural(d, "msgOfferLeft", Math.max(0, remaining)));
      show(els.offerLeft);
    } else {
      hide(els.offerLeft);
    }
    show(els.offer);
  }

  function applyOffer(o) {
    if (!o) {
      offer = null;
      myCode = null;
      stopOffer();
      return;
    }
    if (!offer || offer.ends_at !== o.ends_at) {
      myCode = recalledCode(o);
      if (els.offerClaim) els.offerClaim.disabled = false;
    }
    offer = o;
    if (o.code) myCode = null; // the same code for everyone
    renderOffer();
    if (!offerTimer && offer) offerTimer = setInterval(renderOffer, 1000);
  }

  function onOfferCode(code) {
    if (!code) return;
    myCode = String(code);
    if (offer) rememberCode(offer, myCode);
    clearTimeout(claimTimer);
    if (els.offerClaim) els.offerClaim.disabled = false;
    renderOffer();
  }

  function onClaim() {
    if (!offer || !els.offerClaim) return;
    if (!send({ type: "claim_offer" })) {
      notice(d.msgNotSent || d.msgReconnecting);
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

  // ---- the server's messages -------------------------------------------------------------

  function setViewers(n) {
    if (!els.viewers) return;
    var v = Number(n);
    text(els.viewers, isFinite(v) && n !== null ? Room.plural(d, "msgViewers", v) : "");
  }

  function applyState(s) {
    els.list.textContent = "";
    (s.messages || []).forEach(function (m) { addMessage(m, true); });
    scrollToBottom();
    applyPinnedMessage(s.pinned_message || null);
    applyProduct(s.product || null);
    applyOffer(s.offer || null);
    setViewers(s.viewers);
    applyChatState(s.chat || { open: true, slow_mode: 0 });
  }

  function onNotice(m) {
    var code = m.code;
    if (code === "banned") {
      banned = true;
      pending = null;
      renderChatState();
      notice(m.text, 0);
      return;
    }
    if (code === "name_invalid" || code === "name_taken") {
      if (myName && !named && els.nameInput && !els.nameInput.value) els.nameInput.value = myName;
      show(els.nameForm);
      notice(m.text);
      if (els.nameInput) els.nameInput.focus();
      return;
    }
    if (code === "offer_gone") {
      clearTimeout(claimTimer);
      if (els.offerClaim) els.offerClaim.disabled = false;
      if (offer) {
        offer.remaining = 0;
        renderOffer();
      }
    }
    if (lastSent && RESTORE_CODES.indexOf(code) >= 0 && Date.now() - lastSent.at < 10000) {
      // The message did not go out: give it back to its author.
      var msg = lastSent.msg;
      lastSent = null;
      if (els.input && !els.input.value) {
        els.input.value = msg.text;
        if (els.question) els.question.checked = !!msg.question;
      }
      if (code === "no_name") {
        named = false;
        pending = msg;
        askName();
      }
    }
    if (m.text) notice(m.text);
  }

  function onMessage(m) {
    switch (m.type) {
      case "welcome":
        welcomed = true;
        staff = !!m.staff;
        if (m.name) {
          myName = m.name;
          named = true;
          if (!staff) Room.saveName(m.name);
          hide(els.nameForm);
        } else {
          named = false;
        }
        root.classList.toggle("is-staff", staff);
        if (pending && hasName()) {
          var msg = pending;
          pending = null;
          sendChat(msg);
        }
        break;
      case "state":
        applyState(m);
        break;
      case "named":
        onNamed(m.name);
        break;
      case "chat":
        addMessage(m, isMine(m));
        break;
      case "deleted":
        removeMessage(m.id);
        break;
      case "answered":
        markAnswered(find(m.id));
        break;
      case "pinned_message":
        applyPinnedMessage(m.message || null);
        break;
      case "hearts":
        floatHearts(Math.min(Number(m.count) || 0, 12));
        break;
      case "viewers":
        setViewers(m.count);
        break;
      case "product":
        applyProduct(m.product || null);
        break;
      case "offer":
        applyOffer(m.offer || null);
        break;
      case "offer_code":
        onOfferCode(m.code);
        break;
      case "chat_state":
        applyChatState(m);
        break;
      case "status":
        root.dataset.roomStatus = String(m.status || "");
        break;
      case "notice":
        onNotice(m);
        break;
      default:
        break; // pong, and types this page does not use
    }
    updateCount();
  }

  function onState(s) {
    document.body.dataset.roomState = s;
    if (!els.conn) return;
    var label = s === "connecting" ? d.msgConnecting : s === "reconnecting" ? d.msgReconnecting : "";
    text(els.conn, label);
    if (label) show(els.conn);
    else hide(els.conn);
    if (s !== "open") welcomed = false;
  }

  // ---- start -----------------------------------------------------------------------------

  function wire() {
    if (els.form) els.form.addEventListener("submit", onSubmit);
    if (els.input) {
      els.input.addEventListener("focus", function () {
        // The first time someone without a name wants to write, ask for one. While the
        // welcome is still on its way, a remembered name will most likely do.
        if (hasName() || (!welcomed && myName)) return;
        if (els.nameForm && els.nameForm.hidden) askName();
      });
    }
    if (els.nameForm) els.nameForm.addEventListener("submit", onNameSubmit);
    if (els.heart) els.heart.addEventListener("click", onHeart);
    if (els.heart) {
      els.heart.addEventListener("animationend", function () {
        els.heart.classList.remove("is-glowing");
      });
    }
    if (els.more) els.more.addEventListener("click", scrollToBottom);
    els.list.addEventListener("scroll", function () {
      if (atBottom()) hide(els.more);
    });
    if (els.offerClaim) els.offerClaim.addEventListener("click", onClaim);
    if (els.offerCopy) {
      if (navigator.clipboard && window.isSecureContext) {
        show(els.offerCopy);
        els.offerCopy.addEventListener("click", onCopy);
      } else {
        hide(els.offerCopy);
      }
    }
    if (els.cardClose) {
      els.cardClose.addEventListener("click", function () {
        if (product) dismissedProduct = product.id;
        hide(els.card);
        root.classList.remove("has-product");
      });
    }
  }

  wire();
  updateCount();
  renderChatState();
  room = Room.connect(d.roomUrl, {
    name: function () {
      return myName;
    },
    onMessage: onMessage,
    onState: onState
  });
})();
