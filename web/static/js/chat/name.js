// The name a viewer chats under, remembered in a first-party cookie for a year.

var NAME_COOKIE = "vitrine_name";
var YEAR_S = 365 * 24 * 3600;

export function savedName() {
  var parts = document.cookie ? document.cookie.split(";") : [];
  for (var i = 0; i < parts.length; i++) {
    var kv = parts[i].trim();
    if (kv.indexOf(NAME_COOKIE + "=") !== 0) continue;
    try {
      var v = decodeURIComponent(kv.slice(NAME_COOKIE.length + 1));
      return v || null;
    } catch (err) {
      return null;
    }
  }
  return null;
}

export function saveName(name) {
  var secure = window.location.protocol === "https:" ? "; Secure" : "";
  if (!name) {
    document.cookie = NAME_COOKIE + "=; path=/; max-age=0; SameSite=Lax" + secure;
    return;
  }
  document.cookie =
    NAME_COOKIE + "=" + encodeURIComponent(String(name)) +
    "; path=/; max-age=" + YEAR_S + "; SameSite=Lax" + secure;
}
