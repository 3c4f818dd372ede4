// The demo page's service worker: keeps the page's own files (and its config) so that a tab
// reloaded while offline still starts, as an installed web app would. Network first, so a
// running demo always gets fresh files; the cache answers only when the network does not.
// Calls to the Continuity server (another origin) and /assertion are never touched.
const CACHE = "continuity-web-demo";
const SHELL = ["/", "/app.js", "/config.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        void caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached ?? Response.error())),
  );
});
