// The in-show cart's contents, kept in localStorage so that it survives a reload, another
// show of the shop and the replay (localStorage is per origin: one Vitrine, one shop).
// A line: {id, qty, name, price (minor units), currency, priceText, image}.

var KEY = "vitrine.cart.v1";
var MAX_LINES = 50;
var MAX_QTY = 99;

function read() {
  try {
    var data = JSON.parse(window.localStorage.getItem(KEY) || "[]");
    if (!Array.isArray(data)) return [];
    return data.filter(function (l) {
      return l && Number(l.id) > 0 && Number(l.qty) > 0;
    });
  } catch (err) {
    return []; // storage refused (private mode) or damaged: an empty cart
  }
}

export function cartStore() {
  var lines = read();
  var listeners = [];

  function save() {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(lines));
    } catch (err) {
      /* the cart still works for this page */
    }
    listeners.forEach(function (fn) { fn(lines); });
  }

  function find(id) {
    for (var i = 0; i < lines.length; i++) if (lines[i].id === id) return lines[i];
    return null;
  }

  // Another tab of the shop changed the cart: follow it.
  window.addEventListener("storage", function (event) {
    if (event.key !== KEY) return;
    lines = read();
    listeners.forEach(function (fn) { fn(lines); });
  });

  return {
    lines: function () { return lines; },
    count: function () {
      return lines.reduce(function (n, l) { return n + l.qty; }, 0);
    },
    add: function (product) {
      var line = find(product.id);
      if (line) {
        line.qty = Math.min(MAX_QTY, line.qty + 1);
        Object.assign(line, product, { qty: line.qty });
      } else {
        if (lines.length >= MAX_LINES) return false;
        lines.push(Object.assign({}, product, { qty: 1 }));
      }
      save();
      return true;
    },
    setQty: function (id, qty) {
      var line = find(id);
      if (!line) return;
      if (qty <= 0) lines = lines.filter(function (l) { return l.id !== id; });
      else line.qty = Math.min(MAX_QTY, qty);
      save();
    },
    // "3:2,5:1" for the checkout endpoint.
    items: function () {
      return lines.map(function (l) { return l.id + ":" + l.qty; }).join(",");
    },
    onChange: function (fn) { listeners.push(fn); }
  };
}
