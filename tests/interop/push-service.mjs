// A stand-in for a Web Push service (RFC 8030), built only from third-party libraries (http_ece, jose), which
// tests/Assent.Server.Tests/PushTests.cs and bench/ run against a live Assent server.
//
//   node push-service.mjs
//
// Listens on a free loopback port and prints {"listening":PORT} as its first stdout line. Then:
//   PUT  /subscriptions/NAME  {"private_key","auth","status"}  registers a subscription the test made as a browser
//        would: its P-256 private key (d, base64url) and auth secret; status is what a push to it answers (201 default).
//   POST /push/NAME   a push message. The VAPID header is checked (RFC 8292 §2, §3: Authorization: vapid t=JWT, k=KEY;
//        ES256 under k; aud = this origin; exp at most 24 h ahead) and the body decrypted with the subscription's keys
//        (RFC 8291, Content-Encoding: aes128gcm). Each push is recorded, valid or not, then answered with the status.
//   GET  /received    every recorded push, oldest first: {name, at, ttl, urgency, topic, vapid_key, vapid:{ok,error,claims},
//        payload (the decrypted UTF-8 text) | decrypt_error}; at is Date.now() when the request's body had arrived.
import http from 'node:http';
import crypto from 'node:crypto';
import ece from 'http_ece';
import { decodeJwt, importJWK, jwtVerify } from 'jose';

const subscriptions = new Map();
const received = [];

const b64u = (buf) => Buffer.from(buf).toString('base64url');

async function checkVapid(header, origin) {
  const m = /^vapid\s+(.+)$/i.exec(header || '');
  if (!m) return { ok: false, error: 'no vapid Authorization header' };
  const params = Object.fromEntries(m[1].split(',').map((p) => p.trim().split('=')).map(([k, ...v]) => [k, v.join('=')]));
  if (!params.t || !params.k) return { ok: false, error: 'vapid needs t and k' };
  const raw = Buffer.from(params.k, 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) return { ok: false, error: 'k is not an uncompressed P-256 point' };
  const key = await importJWK({ kty: 'EC', crv: 'P-256', x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33)) }, 'ES256');
  try {
    const { payload, protectedHeader } = await jwtVerify(params.t, key, { algorithms: ['ES256'], audience: origin });
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== 'number') return { ok: false, error: 'no exp', key: params.k };
    if (payload.exp > now + 24 * 3600) return { ok: false, error: 'exp more than 24 h ahead (RFC 8292 §2)', key: params.k };
    return { ok: true, key: params.k, claims: payload, header: protectedHeader };
  } catch (e) {
    let claims;
    try { claims = decodeJwt(params.t); } catch { claims = undefined; }
    return { ok: false, error: `${e.message || e} (expected aud ${origin})`, key: params.k, claims };
  }
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const at = Date.now();
  const url = new URL(req.url, 'http://localhost');
  const origin = `http://${req.headers.host}`;
  try {
    if (req.method === 'PUT' && url.pathname.startsWith('/subscriptions/')) {
      const s = JSON.parse(body.toString('utf8'));
      const ecdh = crypto.createECDH('prime256v1');
      ecdh.setPrivateKey(Buffer.from(s.private_key, 'base64url'));
      subscriptions.set(url.pathname.slice('/subscriptions/'.length), { ecdh, auth: s.auth, status: s.status || 201 });
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/received') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(received));
      return;
    }
    if (req.method === 'POST' && url.pathname.startsWith('/push/')) {
      const name = url.pathname.slice('/push/'.length);
      const s = subscriptions.get(name);
      const vapid = await checkVapid(req.headers.authorization, origin);
      const entry = {
        name, at, ttl: req.headers.ttl, urgency: req.headers.urgency, topic: req.headers.topic,
        content_encoding: req.headers['content-encoding'], vapid_key: vapid.key, vapid: { ok: vapid.ok, error: vapid.error, claims: vapid.claims },
      };
      if (!s) {
        entry.decrypt_error = 'unknown subscription';
      } else {
        try {
          entry.payload = ece.decrypt(body, { version: 'aes128gcm', privateKey: s.ecdh, authSecret: s.auth }).toString('utf8');
        } catch (e) {
          entry.decrypt_error = String(e.message || e);
        }
      }
      received.push(entry);
      const status = s ? s.status : 404;
      // RFC 8030 §5: 201 Created with the message's Location.
      res.writeHead(status, status === 201 ? { location: `/messages/${received.length}` } : {}).end();
      return;
    }
    res.writeHead(404).end();
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e.message || e));
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
});
