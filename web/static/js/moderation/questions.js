// The moderation panel's queue of unanswered questions.
import { findById, remove } from "../dom.js";
import { fill, idOf } from "./list.js";

// page: {els, send} of the moderation panel (moderation.js).
export function questionQueue(page) {
  var els = page.els;

  function add(m) {
    if (!els.questions || !els.questionTpl || findById(els.questions, m.id)) return;
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

  function wire() {
    if (!els.questions) return;
    // A written answer: shown under the question for everyone, and in the replay.
    els.questions.addEventListener("submit", function (event) {
      var form = event.target.closest("form[data-action=answer-text]");
      if (!form) return;
      event.preventDefault();
      var input = form.querySelector("input");
      var answer = (input.value || "").trim();
      var id = idOf(form);
      if (!answer) {
        input.focus();
        return;
      }
      if (id !== null) page.send({ type: "answer", id: id, text: answer });
    });
    els.questions.addEventListener("click", function (event) {
      var b = event.target.closest("button[data-action=answer], button[data-action=answer-live]");
      if (!b) return;
      var id = idOf(b);
      var msg = { type: "answer", id: id };
      if (b.dataset.action === "answer-live") msg.live = true; // a chapter of the replay
      if (id !== null && page.send(msg)) {
        b.disabled = true; // the row leaves on "answered"; if refused, it can be tried again
        setTimeout(function () { b.disabled = false; }, 5000);
      }
    });
  }

  return {
    add: add,
    remove: function (id) {
      remove(findById(els.questions, id));
    },
    clear: function () {
      if (els.questions) els.questions.textContent = "";
    },
    count: function () {
      return els.questions ? els.questions.children.length : 0;
    },
    wire: wire
  };
}
