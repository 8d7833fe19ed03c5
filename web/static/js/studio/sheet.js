// The studio's moderation sheet on a phone: opened by its button, closed by Close or Escape.
// On a desktop the same panel is a side column that is always there (studio.css), and the
// button is not shown. For browser tests: body[data-studio-sheet] is "open" or "closed".
import { $ } from "../dom.js";

export function moderationSheet() {
  var sheet = $("studio-sheet");
  var openButton = $("studio-tools");
  var closeButton = $("studio-sheet-close");
  if (!sheet || !openButton) return;

  function set(open) {
    sheet.classList.toggle("is-open", open);
    openButton.setAttribute("aria-expanded", open ? "true" : "false");
    document.body.dataset.studioSheet = open ? "open" : "closed";
    if (open && closeButton) closeButton.focus();
    else if (!open && document.activeElement && sheet.contains(document.activeElement)) openButton.focus();
  }

  openButton.addEventListener("click", function () {
    set(!sheet.classList.contains("is-open"));
  });
  if (closeButton) closeButton.addEventListener("click", function () { set(false); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && sheet.classList.contains("is-open")) set(false);
  });
  set(false);
}
