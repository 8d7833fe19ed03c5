// The studio's screen wake lock: the phone's screen stays on while the seller is live.

// wanted(): whether the lock is still wanted once the browser grants it.
export function screenLock(wanted) {
  var lock = null;
  var pending = false;

  async function hold() {
    if (lock || pending || !("wakeLock" in navigator)) return;
    if (document.visibilityState !== "visible") return;
    pending = true;
    try {
      var granted = await navigator.wakeLock.request("screen");
      if (!wanted()) {
        granted.release().catch(function () {});
      } else {
        lock = granted;
        granted.addEventListener("release", function () {
          if (lock === granted) lock = null;
        });
      }
    } catch (err) {
      console.debug("vitrine: no wake lock", err);
    } finally {
      pending = false;
    }
  }

  function release() {
    if (!lock) return;
    var old = lock;
    lock = null;
    old.release().catch(function () {});
  }

  return { hold: hold, release: release };
}
