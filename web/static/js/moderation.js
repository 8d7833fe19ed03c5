// The live room, staff side: the moderation panel of the studio and of the admin show page.
// This module wires the capabilities of moderation/ (the chat list and its row actions,
// the question queue, the show controls, the timed offer, mutes and bans) to the room
// connection (room.js, docs/protocol.md); the session cookie makes it staff. Every text
// comes translated from the data-* attributes of #moderation or from <template> rows; what
// people write is only ever inserted as text. For browser tests: body[data-room-state]
// holds the socket's state (connecting, open, reconnecting, closed), body[data-room-staff]
// is "true" once the server welcomed this page as staff, body[data-chat-count] and
// body[data-question-count] count the rows of the chat list and of the question queue.
import { $, noticeLine, text } from "./dom.js";
import { connect } from "./room.js";
import { plural } from "./words.js";
import { rowActions } from "./moderation/actions.js";
import { showControls } from "./moderation/controls.js";
import { modList } from "./moderation/list.js";
import { giveawayControls, pollControls } from "./moderation/engage.js";
import { offerControls } from "./moderation/offer.js";
import { questionQueue } from "./moderation/questions.js";
import { sanctionList } from "./moderation/sanctions.js";

var NOTICE_MS = 5000;

function start(panel) {
  var d = panel.dataset;
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
    offerCodes: $("offer-codes"),
    pollLive: $("mod-poll-live"),
    pollQuestion: $("mod-poll-question"),
    pollResults: $("mod-poll-results"),
    pollFoot: $("mod-poll-foot"),
    pollEnd: $("poll-end"),
    pollForm: $("poll-form"),
    pollQuestionInput: $("poll-question-input"),
    pollOptionInputs: Array.prototype.slice.call(document.querySelectorAll(".poll-option-input")),
    pollSeconds: $("poll-seconds"),
    pollCorrect: $("poll-correct"),
    giveawayLive: $("mod-giveaway-live"),
    giveawayPrize: $("mod-giveaway-prize"),
    giveawayState: $("mod-giveaway-state"),
    giveawayProof: $("mod-giveaway-proof"),
    giveawayDraw: $("giveaway-draw"),
    giveawayForm: $("giveaway-form"),
    giveawayPrizeInput: $("giveaway-prize-input"),
    giveawayEntrants: $("giveaway-entrants"),
    giveawayClaimSeconds: $("giveaway-claim-seconds"),
    messageTpl: $("mod-message-template"),
    questionTpl: $("mod-question-template"),
    sanctions: $("sanctions"),
    sanctionsEmpty: $("sanctions-empty"),
    sanctionTpl: $("mod-sanction-template")
  };
  if (!els.list || !els.messageTpl) return;

  var room = null;
  var connected = false;
  var staff = false;
  var notice = noticeLine(els.notice, NOTICE_MS);
  var page = {
    panel: panel,
    d: d,
    els: els,
    notice: notice,
    // Sends to the room, or says it could not.
    send: function (obj) {
      if (room && room.send(obj)) return true;
      notice(d.msgNotSent || d.msgReconnecting);
      return false;
    }
  };
  var questions = (page.questions = questionQueue(page));
  var list = (page.list = modList(page));
  var controls = showControls(page);
  var offer = offerControls(page);
  var poll = pollControls(page);
  var giveaway = giveawayControls(page);
  var sanctions = sanctionList(page);
  var actions = rowActions(page);

  function renderEnabled() {
    if (els.controls) els.controls.disabled = !(connected && staff);
    document.body.dataset.roomStaff = staff ? "true" : "false";
  }

  function updateCounts() {
    document.body.dataset.chatCount = String(els.list.children.length);
    var q = questions.count();
    document.body.dataset.questionCount = String(q);
    if (els.questionsEmpty) els.questionsEmpty.hidden = q > 0;
  }

  function setViewers(n) {
    var v = Number(n);
    text(els.viewers, isFinite(v) && n !== null && n !== undefined ? plural(d, "msgViewers", v) : "");
  }

  // One handler per message type of the room (docs/protocol.md); others (pong, hearts,
  // status: studio.js follows the show's status) are ignored.
  var handlers = {
    welcome: function (m) {
      staff = !!m.staff;
      panel.dataset.role = m.role || "";
      renderEnabled();
      if (!staff) notice(d.msgNotStaff, 0);
      else if (els.notice && els.notice.textContent === d.msgNotStaff) notice(null);
    },
    state: function (s) {
      list.applyState(s);
      controls.applyProduct(s.product || null);
      offer.apply(s.offer || null);
      poll.apply(s.poll || null);
      giveaway.apply(s.giveaway || null);
      setViewers(s.viewers);
      controls.applyChatState(s.chat || { open: true, slow_mode: 0 });
    },
    chat: function (m) {
      list.add(m, false);
    },
    deleted: function (m) {
      list.remove(m.id);
    },
    answered: function (m) {
      list.markAnswered(m.id);
    },
    pinned_message: function (m) {
      list.applyPinned(m.message || null);
    },
    product: function (m) {
      controls.applyProduct(m.product || null);
    },
    offer: function (m) {
      offer.apply(m.offer || null);
    },
    poll: poll.apply,
    giveaway: giveaway.apply,
    giveaway_draw: giveaway.onDraw,
    chat_state: controls.applyChatState,
    viewers: function (m) {
      setViewers(m.count);
    },
    sanctions: function (m) {
      sanctions.apply(m.sanctions);
    },
    notice: function (m) {
      offer.refused();
      if (m.text) notice(m.text);
    }
  };

  function onMessage(m) {
    if (Object.prototype.hasOwnProperty.call(handlers, m.type)) handlers[m.type](m);
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

  actions.wire();
  list.wire();
  questions.wire();
  controls.wire();
  sanctions.wire();
  offer.wire();
  poll.wire();
  giveaway.wire();
  updateCounts();
  renderEnabled();
  controls.applyProduct(null);
  offer.render();
  room = connect(d.roomUrl, { name: null, onMessage: onMessage, onState: onState });
}

var panel = document.getElementById("moderation");
if (panel && panel.dataset.roomUrl) start(panel);
