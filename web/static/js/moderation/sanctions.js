// The moderation panel's mutes and bans in force, each with its Undo button.
import { text } from "../dom.js";
import { format, timeOfDay } from "../words.js";
import { idOf } from "./list.js";

// page: {d, els, send} of the moderation panel (moderation.js).
export function sanctionList(page) {
  var d = page.d;
  var els = page.els;

  function apply(list) {
    if (!els.sanctions || !els.sanctionTpl) return;
    els.sanctions.textContent = "";
    (list || []).forEach(function (s) {
      var li = els.sanctionTpl.content.firstElementChild.cloneNode(true);
      li.dataset.id = String(s.id);
      li.dataset.kind = s.kind;
      text(li.querySelector(".sanction-kind"), s.kind === "ban" ? d.msgKindBan : d.msgKindMute);
      text(li.querySelector(".msg-name"), s.name);
      text(li.querySelector(".sanction-whole"), s.whole_address ? "(" + d.msgWholeAddress + ")" : "");
      var until = s.until === null || s.until === undefined
        ? d.msgUntilUndone
        : format(d.msgUntil, { t: timeOfDay(s.until) });
      text(li.querySelector(".sanction-when"), format(d.msgSince, { t: timeOfDay(s.since) }) + ", " + until);
      els.sanctions.appendChild(li);
    });
    if (els.sanctionsEmpty) els.sanctionsEmpty.hidden = els.sanctions.children.length > 0;
    document.body.dataset.sanctionCount = String(els.sanctions.children.length);
  }

  function wire() {
    if (!els.sanctions) return;
    els.sanctions.addEventListener("click", function (event) {
      var b = event.target.closest("button[data-action=lift]");
      if (!b) return;
      var id = idOf(b);
      if (id !== null) page.send({ type: "lift", id: id });
    });
  }

  return { apply: apply, wire: wire };
}
