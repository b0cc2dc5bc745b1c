// The MPP authors' own server (npm mppx) run locally with only the outside world replaced (docs/payments.md §9):
// - evm charge: mppx's evm.charge verifies the credential (challenge HMAC and expiry, payee, amount, challenge-hash
//   nonce, EIP-712 signature) and settles through viem, whose custom transport answers JSON-RPC from the USDC model in
//   ../usdc-chain.mjs (signature, v/s, window, nonce reuse, balance as FiatToken v2);
// - stripe charge: mppx's stripe.charge verifies the credential and creates the PaymentIntent with the official
//   stripe package, pointed at the Stripe API stand-in below (Shared Payment Tokens minted and spent as Stripe does:
//   limits on amount, currency, seller and expiry; single use; Idempotency-Key replays flagged idempotent-replayed).
// Time can be moved forward for the whole process (POST /_time/advance?seconds=N) to see what expiry does.
// Usage: node mpp/mpp-servers.mjs → prints "READY <port>".
import http from "node:http";
import { randomBytes } from "node:crypto";
import Stripe from "stripe";
import * as viem from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { Mppx, evm, stripe } from "mppx/server";
import { usdcChain } from "../usdc-chain.mjs";

const { createWalletClient, custom, publicActions, getAddress } = viem;
const { UsdcModel, chain, USDC, CHAIN_ID, transferWithAuthorizationAbi } = usdcChain(viem);

// The process's clock, movable forward: mppx, viem and the stand-ins all read Date.
const RealDate = Date;
let offsetMs = 0;
globalThis.Date = class extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + offsetMs); else super(...args); }
  static now() { return RealDate.now() + offsetMs; }
};

const SELLER = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const OTHER_SELLER = "0x1111111111111111111111111111111111111111";
// Keys of the Stripe stand-in: the payer's (the Assent operator's) mints tokens; the seller's spends them.
const PAYER_KEY = "sk_test_assent_operator";
const PAYER_PAYMENT_METHOD = "pm_card_visa";
const SELLER_KEY = "sk_test_seller";
const SELLER_NETWORK_ID = "profile_seller";
// Another seller with a Stripe account of its own, whose storefront shares the first one's challenge key.
const OTHER_SELLER_KEY = "sk_test_other_seller";
const OTHER_SELLER_NETWORK_ID = "profile_other";
const sellers = new Map([[SELLER_KEY, SELLER_NETWORK_ID], [OTHER_SELLER_KEY, OTHER_SELLER_NETWORK_ID]]);
const PREVIEW_VERSION = "2026-07-29.preview";

// --- The chain ---
const usdc = new UsdcModel();
// The seller's settling key: a fixed test key, holding nothing.
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const client = createWalletClient({ account, chain: baseSepolia, pollingInterval: 20, transport: custom({ request: chain(usdc, account.address) }) })
  .extend(publicActions);

/** mppx evm.charge's settle hook: submit the authorization to USDC and wait for it; a revert refuses the payment. */
async function settle({ payload }) {
  const hash = await client.writeContract({
    address: USDC, abi: transferWithAuthorizationAbi, functionName: "transferWithAuthorization",
    args: [getAddress(payload.from), getAddress(payload.to), BigInt(payload.value), BigInt(payload.validAfter), BigInt(payload.validBefore), payload.nonce, payload.signature],
  });
  const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 20 });
  if (receipt.status !== "success") throw new Error("transferWithAuthorization reverted");
  return { reference: hash };
}

// --- Stripe's API ---
const tokens = new Map();
const idempotent = new Map();
const paymentIntents = [];

function stripeError(res, status, message, code) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { type: "invalid_request_error", message, ...(code && { code }) } }));
}

function keyOf(req) {
  const auth = req.headers.authorization ?? "";
  if (auth.startsWith("Bearer ")) return auth.slice(7);
  if (auth.startsWith("Basic ")) return Buffer.from(auth.slice(6), "base64").toString().replace(/:$/, "");
  return null;
}

/** Answers once per Idempotency-Key (and key owner): a repeat gets the first answer, flagged idempotent-replayed. */
function once(req, res, scope, make) {
  const key = req.headers["idempotency-key"];
  const id = key && `${scope}:${keyOf(req)}:${key}`;
  if (id && idempotent.has(id)) {
    const first = idempotent.get(id);
    res.writeHead(first.status, { "content-type": "application/json", "idempotent-replayed": "true", "idempotency-key": key });
    return res.end(first.body);
  }
  const [status, body] = make();
  const text = JSON.stringify(body);
  if (id && status < 500) idempotent.set(id, { status, body: text });
  res.writeHead(status, { "content-type": "application/json", ...(key && { "idempotency-key": key }) });
  res.end(text);
}

function mintToken(req, res, form) {
  if (keyOf(req) !== PAYER_KEY) return stripeError(res, 401, "Invalid API Key provided");
  if (req.headers["stripe-version"] !== PREVIEW_VERSION) return stripeError(res, 400, "Shared payment tokens need the preview API version");
  const need = ["payment_method", "usage_limits[currency]", "usage_limits[max_amount]", "usage_limits[expires_at]", "seller_details[network_id]"];
  const missing = need.find((n) => !form.get(n));
  if (missing) return stripeError(res, 400, `Missing required param: ${missing}.`, "parameter_missing");
  const known = new Set(need);
  const unknown = [...form.keys()].find((k) => !known.has(k));
  if (unknown) return stripeError(res, 400, `Received unknown parameter: ${unknown}`, "parameter_unknown");
  if (form.get("payment_method") !== PAYER_PAYMENT_METHOD) return stripeError(res, 400, `No such PaymentMethod: '${form.get("payment_method")}'`, "resource_missing");
  const expiresAt = Number(form.get("usage_limits[expires_at]"));
  if (!Number.isInteger(expiresAt) || expiresAt <= Math.floor(Date.now() / 1000)) return stripeError(res, 400, "usage_limits[expires_at] must be in the future");
  once(req, res, "spt", () => {
    const token = {
      id: `spt_${randomBytes(12).toString("hex")}`, object: "shared_payment.granted_token", created: Math.floor(Date.now() / 1000),
      payment_method: form.get("payment_method"),
      usage_limits: { currency: form.get("usage_limits[currency]"), max_amount: Number(form.get("usage_limits[max_amount]")), expires_at: expiresAt },
      seller_details: { network_id: form.get("seller_details[network_id]") },
    };
    tokens.set(token.id, { ...token, used: false });
    return [200, token];
  });
}

function createPaymentIntent(req, res, form) {
  const seller = sellers.get(keyOf(req));
  if (!seller) return stripeError(res, 401, "Invalid API Key provided");
  once(req, res, "pi", () => {
    const spt = tokens.get(form.get("shared_payment_granted_token"));
    const amount = Number(form.get("amount"));
    const fail = (message, code) => [400, { error: { type: "invalid_request_error", message, code } }];
    if (!spt) return fail("No such shared payment token", "resource_missing");
    if (form.get("confirm") !== "true") return fail("A shared payment token is spent by a confirmed PaymentIntent");
    if (spt.used) return fail("This shared payment token has already been used", "shared_payment_token_used");
    if (Math.floor(Date.now() / 1000) >= spt.usage_limits.expires_at) return fail("This shared payment token has expired", "shared_payment_token_expired");
    if (form.get("currency") !== spt.usage_limits.currency) return fail("The currency does not match the token's usage limits");
    if (!Number.isSafeInteger(amount) || amount <= 0 || amount > spt.usage_limits.max_amount) return fail("The amount exceeds the token's usage limits");
    if (spt.seller_details.network_id !== seller) return fail("This shared payment token was granted to another seller");
    spt.used = true;
    const pi = {
      id: `pi_${randomBytes(12).toString("hex")}`, object: "payment_intent", amount, currency: form.get("currency"), status: "succeeded",
      shared_payment_granted_token: spt.id, created: Math.floor(Date.now() / 1000),
    };
    paymentIntents.push(pi);
    return [200, pi];
  });
}

// --- The paid server (made once the port is known: its Stripe client talks to the stand-in on it) ---
let mppx, otherSeller;

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://localhost");
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const text = Buffer.concat(chunks).toString();
    const form = new URLSearchParams(text);
    const json = (status, body) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
    const paid = async (handler, body) => {
      const result = await Mppx.toNodeListener(handler)(req, res);
      if (result.status === 402) return;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(body));
    };
    switch (`${req.method} ${url.pathname}`) {
      case "GET /mpp/evm/weather": return await paid(mppx["evm/charge"]({ amount: "0.01", description: "Weather report" }), { report: "sunny", method: "evm" });
      case "GET /mpp/evm/other-payee": return await paid(mppx["evm/charge"]({ amount: "0.01", recipient: OTHER_SELLER }), { report: "paid elsewhere" });
      case "GET /mpp/evm/dearer": return await paid(mppx["evm/charge"]({ amount: "0.02" }), { report: "dearer" });
      case "GET /mpp/stripe/weather": return await paid(mppx["stripe/charge"]({ amount: "0.50", description: "Weather report" }), { report: "sunny", method: "stripe" });
      case "GET /mpp/stripe/other-seller": return await paid(otherSeller["stripe/charge"]({ amount: "0.50" }), { report: "paid elsewhere" });
      case "GET /mpp/stripe/dearer": return await paid(mppx["stripe/charge"]({ amount: "0.60" }), { report: "dearer" });
      case "GET /mpp/both": return await paid(mppx.compose(["evm/charge", { amount: "0.01" }], ["stripe/charge", { amount: "0.50" }]), { report: "either" });
      case "POST /v1/test_helpers/shared_payment/granted_tokens": return mintToken(req, res, form);
      case "POST /v1/payment_intents": return createPaymentIntent(req, res, form);
      case "GET /_stripe/tokens": return json(200, [...tokens.values()]);
      case "GET /_stripe/payment_intents": return json(200, paymentIntents);
      case "GET /_chain/balance": return json(200, { balance: usdc.balanceOf(url.searchParams.get("address")).toString() });
      case "POST /_chain/mint": usdc.mint(url.searchParams.get("address"), BigInt(url.searchParams.get("amount"))); return json(200, { ok: true });
      case "GET /_chain/transfers": return json(200, usdc.transfers);
      case "POST /_time/advance": offsetMs += Number(url.searchParams.get("seconds")) * 1000; return json(200, { now: new Date().toISOString() });
      default: return json(404, { error: `no route ${req.method} ${url.pathname}` });
    }
  } catch (e) {
    console.error(e);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(e?.message ?? e) }));
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
// The official stripe package, pointed at the stand-in: the seller's PaymentIntents go there.
const sellerStripe = new Stripe(SELLER_KEY, { host: "127.0.0.1", port, protocol: "http", maxNetworkRetries: 0 });
const secretKey = randomBytes(32).toString("base64");
mppx = Mppx.create({
  realm: "mpp-interop.test",
  secretKey,
  methods: [
    evm.charge({ chainId: CHAIN_ID, currency: USDC, decimals: 6, recipient: SELLER, authorization: { name: "USDC", version: "2" }, settle }),
    stripe.charge({ client: sellerStripe, networkId: SELLER_NETWORK_ID, currency: "usd", decimals: 2, paymentMethodTypes: ["card"] }),
  ],
});
otherSeller = Mppx.create({
  realm: "mpp-interop.test",
  secretKey,
  methods: [
    stripe.charge({
      client: new Stripe(OTHER_SELLER_KEY, { host: "127.0.0.1", port, protocol: "http", maxNetworkRetries: 0 }), networkId: OTHER_SELLER_NETWORK_ID,
      currency: "usd", decimals: 2, paymentMethodTypes: ["card"],
    }),
  ],
});
console.log(`READY ${port}`);
