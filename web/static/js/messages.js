// Chat messages as list items, shared by the live chat (chat/list.js) and the chat replay.
// The name, the staff and question badges, the text. What people wrote is only ever
// inserted as text.
import { make } from "./dom.js";

export function badge(kind, label) {
  return make("span", "badge chat-badge " + kind, label || "");
}

// m: {id, name, text, staff, question}; labels: {staff, question}, already translated.
export function render(m, labels) {
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
