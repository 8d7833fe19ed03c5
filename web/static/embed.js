/* Vitrine on the shop's own site (docs/embed.md). One line on any page of the shop:
 *   <script src="https://VITRINE/embed.js" async></script>
 * - A floating button: "Live now" with the show's cover while a show is live, the next show
 *   with a countdown and "Add to calendar" before it, nothing otherwise.
 * - The player in an overlay (an iframe of the show page with ?embed=1), which shrinks to a
 *   draggable miniplayer that keeps playing; after a navigation inside the shop it comes back
 *   by itself (sessionStorage of the shop's origin).
 * - <div data-vitrine="replays" data-product="SKU or variant id">: the replays in which that
 *   product was shown, each opening at its chapter.
 * - "Add to cart" in the player: a cancellable CustomEvent("vitrine:add-to-cart") on window;
 *   unless cancelled, the shop's own cart API (Shopify /cart/add.js, WooCommerce
 *   ?wc-ajax=add_to_cart) from this page; the player is told whether it worked.
 * Loads nothing from any other origin than Vitrine's; messages are checked by origin and
 * window both ways. Plain ES5, no imports: it must never break or block the shop's page. */
(function () {
  "use strict";
  if (window.VitrineEmbed || !window.fetch || !window.URL) return;
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : "";
  if (!base) return;
  var poll = Math.max(2, Number(script.getAttribute("data-poll")) || 20) * 1000;
  var KEY = "vitrine-embed";
  var status = null;
  var ready = null;
  var ui = null; // {host, root, launcher, player, frame, bar}
  var waiting = 0; // the add-to-cart request the player waits an answer for

  var CSS =
    ":host{all:initial}*{box-sizing:border-box;font:14px/1.3 system-ui,sans-serif}" +
    ".launcher{position:fixed;right:16px;bottom:16px;z-index:2147483000;display:flex;" +
    "align-items:center;gap:8px;padding:6px;border-radius:999px;background:#111;color:#fff;" +
    "box-shadow:0 4px 16px rgba(0,0,0,.35)}.launcher[hidden],.player[hidden]{display:none}" +
    "button,a{color:inherit;background:none;border:0;cursor:pointer;text-decoration:none}" +
    ".open{display:flex;align-items:center;gap:8px;padding:0 10px 0 0;font-weight:600}" +
    ".open img{width:44px;height:44px;border-radius:50%;object-fit:cover}" +
    ".badge{background:#d6336c;border-radius:4px;padding:2px 6px;font-size:12px;text-transform:uppercase}" +
    ".cal{padding:6px 10px;border-left:1px solid #555;font-size:13px}" +
    ".player{position:fixed;z-index:2147483001;background:#000;display:flex;flex-direction:column;" +
    "box-shadow:0 6px 24px rgba(0,0,0,.45);overflow:hidden}" +
    ".player.full{inset:0;margin:auto;width:min(100vw,440px);height:min(100vh,820px)}" +
    ".player.mini{width:180px;height:320px;border-radius:12px}" +
    ".bar{display:flex;justify-content:flex-end;gap:4px;padding:4px;background:#111;color:#fff;" +
    "touch-action:none;cursor:move}.bar button{width:32px;height:28px;font-size:18px}" +
    "iframe{flex:1;width:100%;border:0}" +
    ".strip{display:flex;gap:12px;overflow-x:auto;padding:4px 0}.strip h2{font-weight:700}" +
    ".strip button{flex:0 0 160px;text-align:left;color:#111}" +
    ".strip img{width:160px;height:90px;object-fit:cover;border-radius:6px;background:#ddd}";

  // "no-cache": each poll asks the server (or a CDN's short copy) again, so a show that has
  // just gone live is not hidden behind the browser's own cached answer.
  function load(url) {
    return fetch(url, { credentials: "omit", cache: "no-cache" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function saved() {
    try {
      return JSON.parse(window.sessionStorage.getItem(KEY) || "null");
    } catch (err) {
      return null;
    }
  }

  function save(state) {
    try {
      if (state) window.sessionStorage.setItem(KEY, JSON.stringify(state));
      else window.sessionStorage.removeItem(KEY);
    } catch (err) {
      // storage refused: the miniplayer just does not come back after a navigation
    }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  function shadow(host) {
    var root = host.attachShadow({ mode: "open" });
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (err) {
      root.appendChild(el("style", "", CSS));
    }
    return root;
  }

  function label(name, fallback) {
    return (status && status.labels && status.labels[name]) || fallback;
  }

  function mount() {
    if (ui) return ui;
    var host = el("div");
    host.setAttribute("data-vitrine-embed", "");
    document.body.appendChild(host);
    var root = shadow(host);
    var launcher = el("div", "launcher");
    launcher.hidden = true;
    var player = el("div", "player");
    player.hidden = true;
    root.appendChild(launcher);
    root.appendChild(player);
    ui = { host: host, root: root, launcher: launcher, player: player, frame: null };
    return ui;
  }

  function countdown(span, startsAt) {
    function tick() {
      var left = Math.floor(startsAt - Date.now() / 1000);
      if (left <= 0) {
        span.textContent = label("now", "Starting now");
        return;
      }
      var d = Math.floor(left / 86400);
      var h = Math.floor((left % 86400) / 3600);
      var m = Math.floor((left % 3600) / 60);
      var s = left % 60;
      var two = function (n) { return (n < 10 ? "0" : "") + n; };
      span.textContent = (d ? d + " d " : "") + two(h) + ":" + two(m) + ":" + two(s);
    }
    tick();
    return window.setInterval(tick, 1000);
  }

  var ticking = 0;
  function renderButton() {
    var u = mount();
    var l = u.launcher;
    window.clearInterval(ticking);
    l.textContent = "";
    var show = status && status.show;
    if (!show || status.state === "none") {
      l.hidden = true;
      return;
    }
    var open = el("button", "open");
    open.type = "button";
    // Named by what it shows (the badge, the title): a hint, not another name.
    open.title = label("watch", "Watch the show") + ": " + show.title;
    if (show.cover && status.state === "live") {
      var img = el("img");
      img.alt = "";
      img.src = show.cover;
      open.appendChild(img);
    }
    open.appendChild(el("span", "badge", status.state === "live" ? label("live", "Live now") : label("next", "Next show")));
    open.appendChild(el("span", "title", show.title));
    if (status.state === "next") {
      var span = el("span", "countdown");
      open.appendChild(span);
      ticking = countdown(span, show.starts_at);
    }
    open.addEventListener("click", function () {
      openPlayer({ show: show.id, mode: "full", replay: false, t: 0 });
    });
    l.appendChild(open);
    if (status.state === "next") {
      var cal = el("a", "cal", label("calendar", "Add to calendar"));
      cal.href = show.calendar;
      cal.rel = "noopener";
      l.appendChild(cal);
    }
    l.hidden = !!(u.frame && !u.player.hidden);
    l.setAttribute("data-state", status.state);
  }

  function place(state) {
    var p = ui.player;
    p.className = "player " + (state.mode === "mini" ? "mini" : "full");
    if (state.mode === "mini") {
      var x = Math.min(Math.max(0, state.x == null ? window.innerWidth - 196 : state.x), window.innerWidth - 60);
      var y = Math.min(Math.max(0, state.y == null ? window.innerHeight - 336 : state.y), window.innerHeight - 60);
      p.style.left = x + "px";
      p.style.top = y + "px";
      p.style.right = p.style.bottom = "auto";
    } else {
      p.style.left = p.style.top = p.style.right = p.style.bottom = "";
    }
    p.setAttribute("data-mode", state.mode);
  }

  var current = null;
  function openPlayer(state) {
    var u = mount();
    current = state;
    save(state);
    if (!u.frame || u.frame.getAttribute("data-show") !== String(state.show)) {
      u.player.textContent = "";
      var bar = el("div", "bar");
      var size = el("button", "size");
      size.type = "button";
      var close = el("button", "close", "\u00d7");
      close.type = "button";
      close.setAttribute("aria-label", label("close", "Close the player"));
      bar.appendChild(size);
      bar.appendChild(close);
      var frame = el("iframe");
      var src = base + "/shows/" + state.show + "?embed=1";
      if (state.replay && state.t > 0) src += "&t=" + Math.floor(state.t);
      frame.src = src;
      frame.title = label("watch", "Watch the show");
      frame.setAttribute("allow", "autoplay; fullscreen; picture-in-picture; clipboard-write");
      frame.setAttribute("data-show", String(state.show));
      u.player.appendChild(bar);
      u.player.appendChild(frame);
      u.frame = frame;
      u.size = size;
      size.addEventListener("click", function () {
        current.mode = current.mode === "mini" ? "full" : "mini";
        openPlayer(current);
      });
      close.addEventListener("click", closePlayer);
      drag(bar);
    }
    u.size.textContent = state.mode === "mini" ? "\u2922" : "\u2013";
    u.size.setAttribute("aria-label", state.mode === "mini" ? label("expand", "Enlarge the player") : label("shrink", "Shrink the player"));
    place(state);
    u.player.hidden = false;
    u.launcher.hidden = true;
  }

  function closePlayer() {
    save(null);
    current = null;
    if (!ui) return;
    ui.player.hidden = true;
    ui.player.textContent = "";
    ui.frame = null;
    renderButton();
  }

  function drag(bar) {
    var start = null;
    bar.addEventListener("pointerdown", function (e) {
      if (!current || current.mode !== "mini" || e.target !== bar) return;
      var r = ui.player.getBoundingClientRect();
      start = { dx: e.clientX - r.left, dy: e.clientY - r.top };
      bar.setPointerCapture(e.pointerId);
    });
    bar.addEventListener("pointermove", function (e) {
      if (!start) return;
      current.x = e.clientX - start.dx;
      current.y = e.clientY - start.dy;
      place(current);
    });
    bar.addEventListener("pointerup", function () {
      if (start) save(current);
      start = null;
    });
  }

  // --- the shop's cart ---
  function answer(id, ok, message) {
    if (!ui || !ui.frame || !ui.frame.contentWindow) return;
    ui.frame.contentWindow.postMessage({ type: "vitrine:cart-result", id: id, ok: ok, message: message }, base);
  }

  function shopError(r) {
    return r.json().then(
      function (body) {
        var text = body && (body.description || body.message || (body.error && body.error.message));
        return typeof text === "string" && text ? text : label("cart_failed", "The shop could not add this item");
      },
      function () { return label("cart_failed", "The shop could not add this item"); }
    );
  }

  function platformAdd(detail) {
    var platform = status && status.platform;
    var req = null;
    if (platform === "shopify" && detail.variant_id) {
      req = fetch("/cart/add.js", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ items: [{ id: /^\d+$/.test(detail.variant_id) ? Number(detail.variant_id) : detail.variant_id, quantity: detail.quantity }] })
      });
    } else if (platform === "woocommerce") {
      var form = new URLSearchParams();
      form.set("product_id", detail.variant_id || detail.sku || String(detail.product_id));
      form.set("quantity", String(detail.quantity));
      req = fetch("/?wc-ajax=add_to_cart", { method: "POST", credentials: "same-origin", body: form });
    }
    if (!req) return Promise.resolve({ ok: false, message: label("cart_failed", "The shop could not add this item") });
    return req.then(function (r) {
      if (!r.ok) return shopError(r).then(function (m) { return { ok: false, message: m }; });
      return r.json().then(
        function (body) {
          if (body && body.error) return { ok: false, message: label("cart_failed", "The shop could not add this item") };
          return { ok: true, message: label("added", "Added to your cart") };
        },
        function () { return { ok: true, message: label("added", "Added to your cart") }; }
      );
    }, function () {
      return { ok: false, message: label("cart_failed", "The shop could not add this item") };
    });
  }

  function text(v, max) {
    return typeof v === "string" ? v.slice(0, max) : "";
  }

  function whole(v, low, high) {
    return typeof v === "number" && Math.floor(v) === v && v >= low && v <= high ? v : null;
  }

  function addToCart(m) {
    var d = m.detail || {};
    var detail = {
      product_id: whole(d.product_id, 1, 2147483647),
      sku: text(d.sku, 100),
      variant_id: text(d.variant_id, 100),
      quantity: whole(d.quantity, 1, 99),
      price_minor: whole(d.price_minor, 0, 1e12),
      currency: text(d.currency, 3),
      show_id: whole(d.show_id, 1, 2147483647)
    };
    var id = whole(m.id, 1, 1e9);
    if (!detail.product_id || !detail.quantity || !id) return;
    waiting = id;
    var event = new CustomEvent("vitrine:add-to-cart", { detail: detail, cancelable: true });
    if (!window.dispatchEvent(event)) return; // the shop's code adds it: VitrineEmbed.cartResult
    ready.then(function () {
      return platformAdd(detail);
    }).then(function (result) {
      answer(id, result.ok, result.message);
    });
  }

  window.addEventListener("message", function (e) {
    if (!ui || !ui.frame || e.source !== ui.frame.contentWindow || e.origin !== base) return;
    var m = e.data;
    if (!m || typeof m.type !== "string") return;
    if (m.type === "vitrine:add-to-cart") addToCart(m);
    else if (m.type === "vitrine:checkout") {
      ready.then(function () {
        window.location.assign((status && status.cart_path) || "/cart");
      });
    } else if (m.type === "vitrine:time" && current && typeof m.t === "number") {
      current.replay = true;
      current.t = m.t;
      save(current);
    } else if (m.type === "vitrine:ready") ui.player.setAttribute("data-ready", "1");
  });

  // --- replays strip ---
  function strip(holder) {
    var ref = holder.getAttribute("data-product");
    if (!ref || holder.getAttribute("data-vitrine-done")) return;
    holder.setAttribute("data-vitrine-done", "1");
    load(base + "/embed/replays.json?product=" + encodeURIComponent(ref)).then(function (data) {
      var items = (data && data.replays) || [];
      if (!items.length) return;
      var root = shadow(holder);
      root.appendChild(el("h2", "", label("replays", "Seen in our live shows")));
      var list = el("div", "strip");
      items.forEach(function (r) {
        var b = el("button");
        b.type = "button";
        var img = el("img");
        img.alt = "";
        img.loading = "lazy";
        img.src = r.poster;
        b.appendChild(img);
        b.appendChild(el("span", "", r.title));
        b.addEventListener("click", function () {
          openPlayer({ show: r.show_id, mode: "full", replay: true, t: r.t });
        });
        list.appendChild(b);
      });
      root.appendChild(list);
    }, function () {});
  }

  function refresh() {
    return load(base + "/embed/status.json").then(function (data) {
      status = data;
      renderButton();
    }, function () {});
  }

  function start() {
    var again = saved();
    if (again && again.show) openPlayer(again); // back after a navigation, before any fetch
    ready = refresh();
    window.setInterval(function () {
      if (document.visibilityState !== "hidden") refresh();
    }, poll);
    ready.then(function () {
      var holders = document.querySelectorAll('[data-vitrine="replays"]');
      for (var i = 0; i < holders.length; i++) strip(holders[i]);
    });
  }

  window.VitrineEmbed = {
    open: function (showId) { openPlayer({ show: Number(showId), mode: "full", replay: false, t: 0 }); },
    close: closePlayer,
    // For a shop whose own code cancelled vitrine:add-to-cart: tell the player how it went.
    cartResult: function (ok, message) {
      if (waiting) answer(waiting, ok === true, text(message, 200) || label(ok ? "added" : "cart_failed", ""));
    }
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
