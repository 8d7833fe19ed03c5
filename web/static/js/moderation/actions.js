// Moderation actions on a chat row: pin, delete, mute for ten minutes, ban a viewer or address.
import { format } from "../words.js";
import { idOf } from "./list.js";

var MUTE_MINUTES = 10;

// page: {d, els, send, notice, list} of the moderation panel (moderation.js).
export function rowActions(page) {
  var d = page.d;

  function onClick(event) {
    var b = event.target.closest("button[data-action]");
    if (!b || !page.els.list.contains(b)) return;
    var id = idOf(b);
    if (id === null) return;
    var name = { name: page.list.message(id).name || "" };
    switch (b.dataset.action) {
      case "pin":
        if (page.list.isPinned(id)) page.send({ type: "unpin_message" });
        else page.send({ type: "pin_message", id: id });
        break;
      case "delete":
        page.send({ type: "delete", id: id });
        break;
      case "mute":
        if (page.send({ type: "mute", id: id, minutes: MUTE_MINUTES })) {
          page.notice(format(d.msgMutedDone, name));
        }
        break;
      case "ban":
        if (window.confirm(format(d.msgConfirmBan, name))) page.send({ type: "ban", id: id });
        break;
      case "ban-address":
        if (window.confirm(format(d.msgConfirmBanAddress, name))) {
          page.send({ type: "ban", id: id, address: true });
        }
        break;
      default:
        break;
    }
  }

  return {
    wire: function () {
      page.els.list.addEventListener("click", onClick);
    }
  };
}
