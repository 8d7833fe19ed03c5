// DOM helpers shared by the page scripts: lookups, text, hiding, notice lines, keyed lists, links.

export function $(id) {
  return document.getElementById(id);
}

// A new element; content, when given, goes in as text (never as HTML).
export function make(tag, cls, content) {
  var el = document.createElement(tag);
  if (cls) el.className = cls;
  if (content !== undefined && content !== null) el.textContent = String(content);
  return el;
}

export function text(el, value) {
  if (el) el.textContent = value === null || value === undefined ? "" : String(value);
}

export function show(el) {
  if (el) el.hidden = false;
}

export function hide(el) {
  if (el) el.hidden = true;
}

export function remove(el) {
  if (el && el.parentNode) el.parentNode.removeChild(el);
}

// A notice line that hides itself after `defaultMs` (0: stays); notice(text, ms) overrides
// the delay (ms = 0: stays), notice(null) hides it at once.
export function noticeLine(el, defaultMs) {
  var timer = null;
  function notice(message, ms) {
    clearTimeout(timer);
    timer = null;
    if (!el) return;
    if (!message) {
      text(el, "");
      hide(el);
      return;
    }
    text(el, message);
    show(el);
    var wait = ms === undefined || ms === null ? defaultMs : ms;
    if (wait) timer = setTimeout(function () { notice(null); }, wait);
  }
  return notice;
}

// The row of `list` whose data-id is `id` (the newest first), or null.
export function findById(list, id) {
  if (!list || id === null || id === undefined) return null;
  var items = list.children;
  for (var i = items.length - 1; i >= 0; i--) {
    if (items[i].dataset.id === String(id)) return items[i];
  }
  return null;
}

// A scrolling list counts as followed when its end is within 32 px of the view.
export function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 32;
}

// Links from the catalogue: only web addresses and paths of this site become links.
export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  if (/^https?:\/\//i.test(url)) return url;
  if (url.charAt(0) === "/" && url.charAt(1) !== "/") return url;
  return null;
}

// An <a> pointing at `href` and shown, or without href and hidden when there is none.
export function setLink(a, href) {
  if (!a) return;
  if (href) {
    a.href = href;
    show(a);
  } else {
    a.removeAttribute("href");
    hide(a);
  }
}
