// The host's guest controls in the studio: a one-time guest link, the layout, mute, remove.
// Endpoints: GET <state-url> for the state, POST <state-url>/link|layout|mute|unmute|remove
// (CSRF token in X-CSRF-Token). The live room tells viewers the stage; this page polls the
// state every few seconds to show whether the guest is on.
import { $, hide, show, text } from "./dom.js";

var POLL_MS = 3000;

function start(root) {
  var d = root.dataset;
  var els = {
    status: $("guest-status"),
    link: $("guest-link"),
    newLink: $("guest-new-link"),
    side: $("guest-layout-side"),
    inset: $("guest-layout-inset"),
    mute: $("guest-mute"),
    remove: $("guest-remove")
  };

  function render(state) {
    if (!state) return;
    root.dataset.guest = state.guest ? "on" : "off";
    root.dataset.layout = state.layout;
    text(els.status, state.guest ? d.msgOn : state.link ? d.msgWaiting : d.msgNone);
    els.side.setAttribute("aria-pressed", state.layout === "side" ? "true" : "false");
    els.inset.setAttribute("aria-pressed", state.layout === "inset" ? "true" : "false");
    els.mute.setAttribute("aria-pressed", state.muted ? "true" : "false");
    els.remove.disabled = !state.guest && !state.link;
    if (state.url) {
      els.link.value = state.url;
      show(els.link);
      els.link.select();
    } else if (!state.link) {
      els.link.value = "";
      hide(els.link);
    }
  }

  async function call(action, fields) {
    var body = new URLSearchParams(fields || {});
    try {
      var r = await fetch(d.stateUrl + "/" + action, {
        method: "POST",
        headers: { "X-CSRF-Token": d.csrfToken || "" },
        body: body,
        credentials: "same-origin",
        cache: "no-store"
      });
      if (r.ok) render(await r.json());
    } catch (err) {
      console.warn("vitrine: the guest control failed", err);
    }
  }

  async function poll() {
    try {
      var r = await fetch(d.stateUrl, { credentials: "same-origin", cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (err) {
      /* the next poll tries again */
    }
    setTimeout(poll, POLL_MS);
  }

  els.newLink.addEventListener("click", function () { call("link"); });
  els.side.addEventListener("click", function () { call("layout", { layout: "side" }); });
  els.inset.addEventListener("click", function () { call("layout", { layout: "inset" }); });
  els.mute.addEventListener("click", function () {
    call(els.mute.getAttribute("aria-pressed") === "true" ? "unmute" : "mute");
  });
  els.remove.addEventListener("click", function () { call("remove"); });
  poll();
}

var root = document.getElementById("guest-controls");
if (root) start(root);
