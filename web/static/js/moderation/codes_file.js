// The offer form's CSV import: the file goes to the server (POST with the page's CSRF
// token), which reads the codes from the shop's export; they join the pasted codes, and
// the form says how many were added and how many duplicates were skipped.
import { text } from "../dom.js";

// d: the #moderation element's data-* (codesUrl, csrfToken).
export function wireCodesFile(d) {
  var input = document.getElementById("offer-codes-file");
  var box = document.getElementById("offer-codes");
  var status = document.getElementById("offer-codes-status");
  if (!input || !box || !d.codesUrl) return;

  async function upload() {
    var file = input.files && input.files[0];
    if (!file) return;
    var body = new FormData();
    body.append("file", file);
    body.append("have", box.value);
    text(status, "…");
    try {
      var r = await fetch(d.codesUrl, {
        method: "POST",
        headers: { "X-CSRF-Token": d.csrfToken || "" },
        body: body,
        credentials: "same-origin",
        cache: "no-store"
      });
      var answer = await r.json().catch(function () { return {}; });
      if (!r.ok || !Array.isArray(answer.codes)) {
        text(status, answer.error || String(r.status));
        return;
      }
      var had = box.value.split(/[\s,;]+/).filter(Boolean);
      var known = new Set(had);
      var fresh = answer.codes.filter(function (c) { return !known.has(c); });
      box.value = had.concat(fresh).join("\n");
      text(status, answer.message);
    } catch (e) {
      text(status, String(e && e.message || e));
    } finally {
      input.value = "";
    }
  }

  input.addEventListener("change", upload);
}
