// The live room, viewer side: the show page's chat, hearts, pins and offer over the room socket.
// This module wires the capabilities of chat/ to the room connection (room.js,
// docs/protocol.md). Every text it shows comes translated from the data-* attributes of
// <article class="show"> or from the server's notices; what people write is only ever
// inserted as text. For browser tests: body[data-room-state] holds the socket's state
// (connecting, open, reconnecting, closed) and body[data-chat-count] the number of messages
// in the list.
import { $, hide, noticeLine, show, text } from "./dom.js";
import { connect } from "./room.js";
import { plural } from "./words.js";
import { composer } from "./chat/compose.js";
import { hearts } from "./chat/hearts.js";
import { messageList } from "./chat/list.js";
import { giveawayBox, pollBox } from "./chat/engage.js";
import { offerPanel } from "./chat/offer.js";
import { productCard } from "./chat/product.js";

var NOTICE_MS = 5000;

function start(root) {
  var d = root.dataset;
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
    poll: $("poll"),
    pollQuestion: $("poll-question"),
    pollOptions: $("poll-options"),
    pollFoot: $("poll-foot"),
    giveaway: $("giveaway"),
    giveawayPrize: $("giveaway-prize"),
    giveawayEnter: $("giveaway-enter"),
    giveawayState: $("giveaway-state"),
    giveawayClaim: $("giveaway-claim"),
    giveawayEmail: $("giveaway-email"),
    card: $("pinned"),
    cardMedia: $("pinned-media"),
    cardName: $("pinned-name"),
    cardPrice: $("pinned-price"),
    cardCart: $("pinned-cart"),
    cardDetails: $("pinned-details"),
    cardClose: $("pinned-close")
  };
  if (!els.chat || !els.list) return;

  var room = null;
  var page = {
    root: root,
    d: d,
    els: els,
    notice: noticeLine(els.notice, NOTICE_MS),
    send: function (obj) {
      return !!room && room.send(obj);
    }
  };
  var list = (page.list = messageList(page));
  var me = composer(page);
  var heart = hearts(page);
  var product = productCard(page);
  var offer = offerPanel(page);
  var poll = pollBox(page);
  var giveaway = giveawayBox(page);

  function setViewers(n) {
    if (!els.viewers) return;
    var v = Number(n);
    text(els.viewers, isFinite(v) && n !== null ? plural(d, "msgViewers", v) : "");
  }

  // One handler per message type of the room (docs/protocol.md); others are ignored.
  var handlers = {
    welcome: me.onWelcome,
    state: function (s) {
      list.applyState(s);
      product.apply(s.product || null);
      offer.apply(s.offer || null);
      poll.apply(s.poll || null);
      giveaway.apply(s.giveaway || null);
      setViewers(s.viewers);
      me.applyChatState(s.chat || { open: true, slow_mode: 0 });
    },
    named: function (m) {
      me.onNamed(m.name);
    },
    chat: function (m) {
      list.add(m, me.isMine(m));
    },
    deleted: function (m) {
      list.remove(m.id);
    },
    answered: function (m) {
      list.markAnswered(m.id, m);
    },
    poll: poll.apply,
    giveaway: giveaway.apply,
    entered: giveaway.onEntered,
    prize_won: giveaway.onWon,
    prize_claimed: giveaway.onClaimed,
    pinned_message: function (m) {
      list.applyPinned(m.message || null);
    },
    hearts: function (m) {
      heart.float(Math.min(Number(m.count) || 0, 12));
    },
    viewers: function (m) {
      setViewers(m.count);
    },
    product: function (m) {
      product.apply(m.product || null);
    },
    offer: function (m) {
      offer.apply(m.offer || null);
    },
    offer_code: function (m) {
      offer.onCode(m.code);
    },
    chat_state: me.applyChatState,
    status: function (m) {
      // player.js watches this attribute: the show went live or ended.
      root.dataset.roomStatus = String(m.status || "");
    },
    stage: function (m) {
      // player/guest.js watches these: the guest came, left, or the layout changed.
      root.dataset.stageLayout = m.layout === "inset" ? "inset" : "side";
      root.dataset.stageGuest = m.guest ? "1" : "";
    },
    notice: function (m) {
      if (me.onNotice(m)) return;
      if (m.code === "offer_gone") offer.onGone();
      poll.onRefused(m.code);
      if (m.text) page.notice(m.text);
    }
  };

  function onMessage(m) {
    if (Object.prototype.hasOwnProperty.call(handlers, m.type)) handlers[m.type](m);
    list.updateCount();
  }

  function onState(s) {
    document.body.dataset.roomState = s;
    if (s !== "open") me.unwelcome();
    if (!els.conn) return;
    var label = s === "connecting" ? d.msgConnecting : s === "reconnecting" ? d.msgReconnecting : "";
    text(els.conn, label);
    if (label) show(els.conn);
    else hide(els.conn);
  }

  me.wire();
  heart.wire();
  list.wire();
  offer.wire();
  poll.wire();
  giveaway.wire();
  product.wire();
  list.updateCount();
  me.render();
  room = connect(d.roomUrl, {
    name: me.name,
    onMessage: onMessage,
    onState: onState,
    feed: true // no socket (refused, blocked, video over HLS): the room's HTTP feed
  });
}

var root = document.querySelector("article.show[data-room-url]");
if (root) start(root);
