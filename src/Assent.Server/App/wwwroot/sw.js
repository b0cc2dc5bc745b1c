// Assent approver app's service worker (docs/http-api.md §12.1): it keeps the app's shell so the page opens
// without a network and says so, instead of the browser's error page. Network first, so a new version of the
// server's page is used as soon as it is reachable; the API (/webauthn/…) and the stream never go through the cache.
'use strict';
const CACHE = 'assent-shell-v1';
const SHELL = ['/app', '/app/app.js', '/app/app.css', '/app/icon.svg', '/app/manifest.webmanifest'];

self.addEventListener('install', (e) => e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting())));
self.addEventListener('activate', (e) => e.waitUntil(
  caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim())));

self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  // Every page of the app is the same document (/app, /app/enroll): offline, the shell answers for each.
  const key = e.request.mode === 'navigate' && url.pathname.startsWith('/app') ? '/app' : SHELL.includes(url.pathname) ? url.pathname : null;
  if (!key) return;
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok && key === url.pathname) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(key, copy)); }
    return r;
  }).catch(() => caches.match(key).then((r) => r || Response.error())));
});

// Web Push (docs/http-api.md §12.6): the browser decrypts the message (RFC 8291) and hands it here; it names the request,
// and carries only what the notification shows. One notification per request (tag), replaced, never stacked.
self.addEventListener('push', (e) => {
  let m = {};
  try { m = e.data ? e.data.json() : {}; } catch { m = {}; }
  const text = (v, fallback) => (typeof v === 'string' && v ? v : fallback);
  const url = text(m.url, '').startsWith('/app#/requests/') ? m.url : '/app';
  e.waitUntil(self.registration.showNotification(text(m.title, 'Assent'), {
    body: text(m.body, 'A request is waiting for your answer.'), tag: text(m.id, 'assent'), icon: '/app/icon.svg', data: { url },
  }));
});

// A tap opens the request: an open app is told (it shows the card without reloading) and focused; otherwise a new window.
self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const url = new URL((e.notification.data && e.notification.data.url) || '/app', self.location.origin).href;
  const open = self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
    const app = list.find((c) => new URL(c.url).pathname.startsWith('/app'));
    if (!app) return self.clients.openWindow(url);
    app.postMessage({ type: 'assent:open', url });
    return app.focus().catch(() => app);
  });
  e.waitUntil(open);
});
