// The show page's chat list: the last 200 messages, answered marks, deletions, the pinned message.
import { atBottom, findById, hide, make, remove, show, text } from "../dom.js";
import { badge, render } from "../messages.js";

var MAX_MESSAGES = 200;

// page: {d, els} of the show page (chat.js).
export function messageList(page) {
  var d = page.d;
  var els = page.els;
  var pinnedMessageId = null;

  function scrollToBottom() {
    els.list.scrollTop = els.list.scrollHeight;
    hide(els.more);
  }
  function updateCount() {
    document.body.dataset.chatCount = String(els.list.children.length);
  }
  function find(id) {
    return findById(els.list, id);
  }

  // The answered mark; a written answer goes under the question, as text.
  function markAnswered(li, m) {
    if (!li) return;
    if (!li.classList.contains("is-answered")) {
      li.classList.add("is-answered");
      var b = badge("answered", m && m.live ? d.msgAnsweredLive || d.msgAnswered : d.msgAnswered);
      var textEl = li.querySelector(".msg-text");
      li.insertBefore(b, textEl);
      li.insertBefore(document.createTextNode(" "), textEl);
    }
    if (m && m.answer && !li.querySelector(".msg-answer")) {
      li.appendChild(make("p", "msg-answer", m.answer));
    }
  }

  function renderMessage(m) {
    var li = render(m, { staff: d.msgStaff, question: d.msgQuestion });
    if (m.question && m.answered) markAnswered(li, m);
    return li;
  }

  function add(m, follow) {
    if (!m || m.id === undefined || find(m.id)) return;
    var stick = follow || atBottom(els.list);
    els.list.appendChild(renderMessage(m));
    while (els.list.children.length > MAX_MESSAGES) els.list.removeChild(els.list.firstElementChild);
    if (stick) scrollToBottom();
    else show(els.more);
  }

  function removeMessage(id) {
    remove(find(id));
    if (pinnedMessageId !== null && String(pinnedMessageId) === String(id)) applyPinned(null);
  }

  function applyPinned(m) {
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

  // The room's state on (re)connection: its recent messages and pinned message.
  function applyState(s) {
    els.list.textContent = "";
    (s.messages || []).forEach(function (m) { add(m, true); });
    scrollToBottom();
    applyPinned(s.pinned_message || null);
  }

  function wire() {
    if (els.more) els.more.addEventListener("click", scrollToBottom);
    els.list.addEventListener("scroll", function () {
      if (atBottom(els.list)) hide(els.more);
    });
  }

  return {
    add: add,
    remove: removeMessage,
    markAnswered: function (id, m) {
      markAnswered(find(id), m);
    },
    applyPinned: applyPinned,
    applyState: applyState,
    scrollToBottom: scrollToBottom,
    updateCount: updateCount,
    wire: wire
  };
}
