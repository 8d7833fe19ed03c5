// Vitrine chat messages as list items, shared by the live chat (chat.js) and the chat
// replay (replay.js): the name, the staff and question badges, the text. What people
// wrote is only ever inserted as text.
"use strict";

(function () {
  function make(tag, cls, content) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content !== undefined && content !== null) el.textContent = String(content);
    return el;
  }

  function badge(kind, label) {
    return make("span", "badge chat-badge " + kind, label || "");
  }

  // m: {id, name, text, staff, question}; labels: {staff, question}, already translated.
  function render(m, labels) {
    var li = make("li", "msg");
    if (m.id !== undefined && m.id !== null) li.dataset.id = String(m.id);
    if (m.staff) li.classList.add("is-staff");
    if (m.question) li.classList.add("is-question");
    li.appendChild(make("strong", "msg-name", m.name));
    li.appendChild(document.createTextNode(" "));
    if (m.staff) {
      li.appendChild(badge("staff", labels.staff));
      li.appendChild(document.createTextNode(" "));
    }
    if (m.question) {
      li.appendChild(badge("question", labels.question));
      li.appendChild(document.createTextNode(" "));
    }
    li.appendChild(make("span", "msg-text", m.text));
    return li;
  }

  window.VitrineMessages = { badge: badge, render: render };
})();
