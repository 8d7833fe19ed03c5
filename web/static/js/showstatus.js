// A show's live status (status, publishing, viewers, recording), polled by player and studio.

// Resolves to the status object, or null when the server answered with an error. Rejects
// when the network fails.
export async function fetchStatus(url) {
  var r = await fetch(url, {
    cache: "no-store",
    credentials: "same-origin",
    headers: { Accept: "application/json" }
  });
  return r.ok ? r.json() : null;
}
