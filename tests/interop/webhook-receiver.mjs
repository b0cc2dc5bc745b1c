// A webhook and CIBA notification receiver for the tests: the third-party `standardwebhooks` package verifies
// every webhook's signature (Standard Webhooks spec), so Assent's signing is checked by code it does not share.
// Usage: node webhook-receiver.mjs PORT [WHSEC_SECRET]
// Prints one line per request: EVENT {json}, CIBA {json}, or REFUSED {json}; answers by path:
//   /ok 204 · /fail 500 · /redirect 302 · /slow (?ms=N, default 3 s, then 204) · /flaky (500 once per event id, then 204)
//   /close (closes the connection without an answer, prints CLOSED {json}) · /ciba 204
// Before answering, every verified webhook also prints ARRIVED {id, path, open, total}: how many requests carrying this
// webhook-id (open) and how many in all (total) are unanswered at that moment, this one included.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const [port, secret] = process.argv.slice(2);
const verifier = secret ? new Webhook(secret) : null;
const flaked = new Set();
const open = new Map();
let total = 0;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/ciba") {
      console.log("CIBA " + JSON.stringify({ authorization: req.headers["authorization"] ?? null, contentType: req.headers["content-type"], body: JSON.parse(body) }));
      res.writeHead(204).end();
      return;
    }
    let event;
    try {
      event = verifier.verify(body, {
        "webhook-id": req.headers["webhook-id"],
        "webhook-timestamp": req.headers["webhook-timestamp"],
        "webhook-signature": req.headers["webhook-signature"],
      });
    } catch (e) {
      console.log("REFUSED " + JSON.stringify({ path, error: String(e?.message ?? e) }));
      res.writeHead(400).end();
      return;
    }
    const id = req.headers["webhook-id"];
    open.set(id, (open.get(id) ?? 0) + 1);
    total++;
    // No longer open once answered (counted before the answer leaves, so the sender cannot have it first) or once the
    // connection closed by either side.
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        open.set(id, open.get(id) - 1);
        total--;
      }
    };
    res.on("close", settle);
    console.log("ARRIVED " + JSON.stringify({ id, path, open: open.get(id), total }));
    if (path === "/close") {
      console.log("CLOSED " + JSON.stringify({ id, type: event.type }));
      req.socket.destroy();
      return;
    }
    if (path === "/fail") {
      console.log("FAILED " + JSON.stringify({ id, type: event.type }));
      res.writeHead(500).end("receiver error");
      return;
    }
    if (path === "/redirect") {
      res.writeHead(302, { location: "/ok" }).end();
      return;
    }
    if (path === "/flaky" && !flaked.has(id)) {
      flaked.add(id);
      console.log("FAILED " + JSON.stringify({ id, type: event.type }));
      res.writeHead(500).end();
      return;
    }
    const answer = () => {
      if (settled) return; // the sender hung up (or died) while the answer was held back
      settle();
      console.log("EVENT " + JSON.stringify({ id, path, ...event }));
      res.writeHead(204).end();
    };
    if (path === "/slow") setTimeout(answer, Number(new URL(req.url, "http://x").searchParams.get("ms") ?? 3000));
    else answer();
  });
});
server.listen(Number(port), "127.0.0.1", () => console.log("LISTENING " + port));
