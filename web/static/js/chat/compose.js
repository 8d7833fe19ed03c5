// The show page's chat form: who the viewer is, whether the chat is open or slow, sending.
// A message the server refuses is given back to its author.
import { hide, show, text } from "../dom.js";
import { plural } from "../words.js";
import { savedName, saveName } from "./name.js";

// A refusal with one of these codes gives the message back to its author.
var RESTORE_CODES = ["rate_limited", "too_long", "muted", "slow_mode", "chat_closed", "no_name"];

// page: {root, d, els, send, notice, list} of the show page (chat.js).
export function composer(page) {
  var d = page.d;
  var els = page.els;
  var welcomed = false;
  var staff = false;
  var named = false; // the server knows this viewer by a name
  var myName = savedName();
  var banned = false;
  var chat = { open: true, slow: 0 };
  var pending = null; // a message waiting for a name
  var lastSent = null; // {msg, at}: put back in the input when the server refuses it

  function render() {
    var closed = !chat.open || banned;
    if (els.input) els.input.disabled = closed;
    if (els.send) els.send.disabled = closed;
    if (els.question) els.question.disabled = closed;
    var label = "";
    if (banned) label = ""; // the notice says why
    else if (!chat.open) label = d.msgChatClosed || "";
    else if (chat.slow > 0 && !staff) label = plural(d, "msgSlowMode", chat.slow);
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
    render();
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
    if (!page.send(msg)) {
      page.notice(d.msgNotSent || d.msgReconnecting);
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
    if (sendChat(msg)) page.list.scrollToBottom();
  }

  function onNameSubmit(event) {
    event.preventDefault();
    var value = els.nameInput.value.trim();
    if (!value) return;
    if (!page.send({ type: "set_name", name: value })) page.notice(d.msgNotSent || d.msgReconnecting);
  }

  function onNamed(name) {
    myName = name;
    named = true;
    saveName(name);
    hide(els.nameForm);
    page.notice(null);
    if (pending) {
      var msg = pending;
      pending = null;
      if (sendChat(msg)) page.list.scrollToBottom();
    }
    if (els.input && !els.input.disabled) els.input.focus();
  }

  function onWelcome(m) {
    welcomed = true;
    staff = !!m.staff;
    if (m.name) {
      myName = m.name;
      named = true;
      if (!staff) saveName(m.name);
      hide(els.nameForm);
    } else {
      named = false;
    }
    page.root.classList.toggle("is-staff", staff);
    if (pending && hasName()) {
      var msg = pending;
      pending = null;
      sendChat(msg);
    }
  }

  // Notices about this viewer: a ban, a refused name (true: nothing more to do), or a refused
  // message, given back to its author.
  function onNotice(m) {
    var code = m.code;
    if (code === "banned") {
      banned = true;
      pending = null;
      render();
      page.notice(m.text, 0);
      return true;
    }
    if (code === "name_invalid" || code === "name_taken") {
      if (myName && !named && els.nameInput && !els.nameInput.value) els.nameInput.value = myName;
      show(els.nameForm);
      page.notice(m.text);
      if (els.nameInput) els.nameInput.focus();
      return true;
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
    return false;
  }

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
  }

  return {
    render: render,
    applyChatState: applyChatState,
    onWelcome: onWelcome,
    onNamed: onNamed,
    onNotice: onNotice,
    // A message of this viewer's own: the list follows it to the bottom.
    isMine: function (m) {
      return named && !!m && m.name === myName;
    },
    name: function () {
      return myName;
    },
    // The socket is not open: the next welcome tells who this page is.
    unwelcome: function () {
      welcomed = false;
    },
    wire: wire
  };
}
