// KPI reports from a viewer page (docs/kpis.md): join, heartbeats, leave, taps on links.
// The element with data-kpi-url says where to report, for which show (data-show-id), as
// which viewer (data-kpi-viewer, the random id of the first-party cookie) and how often
// (data-kpi-heartbeat, seconds).
// It reports join when the page is shown, heartbeat while it stays on screen, leave when
// it is hidden or closed (sendBeacon survives the page closing), and the taps on links
// marked data-kpi="add_to_cart" | "product_click" | "calendar_add" (the product comes from
// the closest data-product-id, the price from data-price). Shop links get the viewer id
// (vitrine_v) at the moment they are followed, so the shop can report the sale back.
// For browser tests: body[data-kpi-sent] counts the reports sent. replay.js imports send.

var root = document.querySelector("[data-kpi-url]");
var d = root ? root.dataset : {};
var url = d.kpiUrl;
var show = Number(d.showId);
var viewer = d.kpiViewer || "";
var every = Math.max(5, Number(d.kpiHeartbeat) || 15) * 1000;
var sent = 0;
var present = false;
var timer = null;

// Reports one event of this page's show; does nothing on a page that reports none.
export function send(kind, props) {
  if (!root) return;
  var body = JSON.stringify({ show: show, kind: kind, props: props || {} });
  sent += 1;
  document.body.dataset.kpiSent = String(sent);
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
  } catch (err) {
    // fall through to fetch
  }
  if (window.fetch) {
    fetch(url, { method: "POST", body: body, keepalive: true, credentials: "same-origin" }).catch(
      function () {}
    );
  }
}

function param(name) {
  try {
    return new URL(window.location.href).searchParams.get(name) || "";
  } catch (err) {
    return "";
  }
}

var joinedPath = "";

function joinProps() {
  var props = { utm_source: param("utm_source"), referrer: document.referrer || "" };
  // The live player (run before this module on the show page) says which path it took.
  joinedPath = document.body.dataset.playerPath || "";
  if (joinedPath) props.path = joinedPath;
  // Inside the shop's site (embed_bridge.js): the shop page's host, for the `embed` channel.
  if (document.body.dataset.embedHost) props.embed = document.body.dataset.embedHost;
  return props;
}

// The player switched to HLS after the join was sent (WebRTC could not connect, or the
// show was full): a join again, with the path the viewer really got. Only a viewer's
// first join decides their channel and device, so nothing is counted twice.
document.addEventListener("vitrine:path", function () {
  if (present && document.body.dataset.playerPath !== joinedPath) send("join", joinProps());
});

function join() {
  if (present) return;
  present = true;
  send("join", joinProps());
  timer = window.setInterval(function () {
    send("heartbeat");
  }, every);
}

function leave() {
  if (!present) return;
  present = false;
  window.clearInterval(timer);
  send("leave");
}

function withViewer(href) {
  if (!viewer) return href;
  try {
    var u = new URL(href, window.location.href);
    if (u.protocol !== "http:" && u.protocol !== "https:") return href;
    u.searchParams.set("vitrine_v", viewer);
    return u.toString();
  } catch (err) {
    return href;
  }
}

function onClick(event) {
  var a = event.target.closest ? event.target.closest("a[data-kpi]") : null;
  if (!a || !a.getAttribute("href")) return;
  var holder = a.closest("[data-product-id]");
  var product = holder ? Number(holder.dataset.productId) : NaN;
  var kind = a.dataset.kpi;
  if (kind === "calendar_add") {
    send("calendar_add");
    return;
  }
  if (!(product > 0)) return;
  if (kind === "add_to_cart") {
    var price = Number(holder.dataset.price);
    send("add_to_cart", { product: product, quantity: 1, price: price >= 0 ? Math.round(price) : 0 });
  } else if (kind === "product_click") {
    send("product_click", { product: product });
  } else {
    return;
  }
  a.href = withViewer(a.href); // followed right after this handler
}

if (root) {
  document.addEventListener("click", onClick, true);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") leave();
    else join();
  });
  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", function () {
    if (document.visibilityState !== "hidden") join();
  });
  if (document.visibilityState !== "hidden") join();
}
