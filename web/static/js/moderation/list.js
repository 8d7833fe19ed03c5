// The moderation panel's chat list: rows with their actions, answered and pinned marks.
import { atBottom, findById, hide, remove, show, text } from "../dom.js";

var MAX_MESSAGES = 200;

// page: {d, els, questions} of the moderation panel (moderation.js).
export function modList(page) {
  var d = page.d;
  var els = page.els;
  var pinnedMessageId = null;
  var messages = {}; // id -> the chat message, for the names in confirmations

  function scrollToBottom() {
    els.list.scrollTop = els.list.scrollHeight;
    hide(els.more);
  }

  function isPinned(id) {
    return pinnedMessageId !== null && String(pinnedMessageId) === String(id);
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
      remove(li.querySelector(sel));
    });
    markPinned(li, isPinned(m.id));
    return li;
  }

  function add(m, follow) {
    if (!m || m.id === undefined || findById(els.list, m.id)) return;
    messages[m.id] = m;
    var stick = follow || atBottom(els.list);
    els.list.appendChild(renderMessage(m));
    while (els.list.children.length > MAX_MESSAGES) {
      var first = els.list.firstElementChild;
      delete messages[first.dataset.id];
      els.list.removeChild(first);
    }
    if (stick) scrollToBottom();
    else show(els.more);
    if (m.question && !m.answered) page.questions.add(m);
  }

  function markAnswered(id) {
    var li = findById(els.list, id);
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
    page.questions.remove(id);
  }

  function removeMessage(id) {
    remove(findById(els.list, id));
    delete messages[id];
    page.questions.remove(id);
    if (isPinned(id)) applyPinned(null);
  }

  function applyPinned(m) {
    var old = pinnedMessageId;
    pinnedMessageId = m ? m.id : null;
    if (old !== null) markPinned(findById(els.list, old), false);
    if (!m) {
      hide(els.pinned);
      return;
    }
    markPinned(findById(els.list, m.id), true);
    text(els.pinnedName, m.name);
    text(els.pinnedText, m.text);
    show(els.pinned);
  }

  // The room's state on (re)connection: recent messages, open questions, the pinned message.
  function applyState(s) {
    els.list.textContent = "";
    page.questions.clear();
    messages = {};
    pinnedMessageId = s.pinned_message ? s.pinned_message.id : null;
    (s.messages || []).forEach(function (m) { add(m, true); });
    (s.questions || []).forEach(function (m) {
      messages[m.id] = messages[m.id] || m;
      if (!m.answered) page.questions.add(m);
    });
    scrollToBottom();
    applyPinned(s.pinned_message || null);
  }

  function wire() {
    els.list.addEventListener("scroll", function () {
      if (atBottom(els.list)) hide(els.more);
    });
    if (els.more) els.more.addEventListener("click", scrollToBottom);
  }

  return {
    add: add,
    remove: removeMessage,
    markAnswered: markAnswered,
    applyPinned: applyPinned,
    applyState: applyState,
    isPinned: isPinned,
    message: function (id) {
      return messages[id] || {};
    },
    scrollToBottom: scrollToBottom,
    wire: wire
  };
}

// A row's name and text, as text.
export function fill(node, m) {
  text(node.querySelector(".msg-name"), m.name);
  text(node.querySelector(".msg-text"), m.text);
}

// The data-id of the row holding `el` (a number when it is one), or null.
export function idOf(el) {
  var li = el && el.closest("li[data-id]");
  if (!li) return null;
  var n = Number(li.dataset.id);
  return isFinite(n) ? n : li.dataset.id;
}
