// Vitrine snippet for the shop's own pages (docs/conversions.md). Include it on every page
// of the shop:  <script src="https://VITRINE/static/js/vitrine-shop.js" async></script>
// 1. When a visitor lands from a Vitrine link (…?utm_campaign=show-7&vitrine_v=…), it
//    remembers the show and the viewer in this shop's localStorage for 30 days.
// 2. On the order confirmation page, report the order:
//      window.vitrineOrder = { order_id: "1001", amount: 4990, currency: "EUR" };
//    set before the snippet loads, or VitrineShop.purchase({...}) after. Amounts are in
//    minor units (cents). Nothing is sent for visitors who did not come from a show.
"use strict";

(function () {
  var KEY = "vitrine";
  var DAYS = 30;
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : "";

  function remember() {
    try {
      var q = new URL(window.location.href).searchParams;
      var viewer = q.get("vitrine_v");
      var campaign = q.get("utm_campaign") || "";
      if (!viewer) return;
      var m = /^show-(\d+)$/.exec(campaign);
      var saved = { v: viewer, show: m ? Number(m[1]) : null, at: Date.now() };
      window.localStorage.setItem(KEY, JSON.stringify(saved));
    } catch (err) {
      // storage refused (private mode): the order simply is not attributed
    }
  }

  function recall() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(KEY) || "null");
      if (saved && saved.v && Date.now() - saved.at < DAYS * 86400000) return saved;
    } catch (err) {
      // nothing usable saved
    }
    return null;
  }

  function purchase(order) {
    var saved = recall();
    if (!saved || !base || !order) return false;
    var body = {
      order_id: String(order.order_id),
      amount: Math.round(Number(order.amount)),
      currency: String(order.currency || ""),
      vitrine_v: saved.v
    };
    if (saved.show) body.show = saved.show;
    if (Array.isArray(order.products)) body.products = order.products;
    var data = JSON.stringify(body);
    var url = base + "/api/conversions/beacon";
    if (navigator.sendBeacon && navigator.sendBeacon(url, data)) return true;
    if (window.fetch) {
      fetch(url, { method: "POST", body: data, mode: "cors", keepalive: true }).catch(function () {});
      return true;
    }
    return false;
  }

  remember();
  window.VitrineShop = { purchase: purchase };
  if (window.vitrineOrder) purchase(window.vitrineOrder);
})();
