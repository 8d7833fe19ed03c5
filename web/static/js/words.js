// Words and counts: templates with {placeholders}, plurals by the page's language, clocks.

// "{n} watching" with {n: 4} -> "4 watching". Templates come from translated data-*.
export function format(template, vars) {
  return String(template || "").replace(/\{(\w+)\}/g, function (all, key) {
    return vars && Object.prototype.hasOwnProperty.call(vars, key) ? String(vars[key]) : all;
  });
}

// A count in words: "1 spectateur", "2 spectateurs". The page gives both forms, made by
// ngettext on the server: data-msg-<key> (plural) and data-msg-<key>-one (the form for
// the language's "one" category, which in French covers 0 and 1). Intl.PluralRules
// picks the category for the page's language (<html lang>).
export function plural(dataset, key, n) {
  var rule = "other";
  try {
    rule = new Intl.PluralRules(document.documentElement.lang || undefined).select(Number(n));
  } catch (e) {
    rule = Number(n) === 1 ? "one" : "other";
  }
  var one = dataset[key + "One"];
  return format(rule === "one" && one ? one : dataset[key] || "{n}", { n: n });
}

// Seconds as m:ss (or h:mm:ss).
export function clock(seconds) {
  var s = Math.max(0, Math.ceil(seconds));
  var h = Math.floor(s / 3600);
  var m = Math.floor((s % 3600) / 60);
  var r = s % 60;
  var mm = h > 0 && m < 10 ? "0" + m : String(m);
  return (h > 0 ? h + ":" : "") + mm + ":" + (r < 10 ? "0" + r : r);
}

// A Unix time as the hour and minute of the visitor's clock.
export function timeOfDay(unix) {
  return new Date(Number(unix) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
