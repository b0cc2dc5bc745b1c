// The x402 protocol authors' own reference servers, run locally with only the chain replaced (docs/payments.md §8):
// - x402 v2: @x402/express paymentMiddleware with @x402/evm's exact scheme, settling through a facilitator built from
//   @x402/core's x402Facilitator and @x402/evm's exact facilitator scheme;
// - x402 v1: x402-express paymentMiddleware, settling through x402's own facilitator verify/settle.
// Both facilitators talk to "Base Sepolia" through viem, whose custom transport answers JSON-RPC from the USDC model
// in usdc-chain.mjs: EIP-3009 transferWithAuthorization checked as FiatToken v2 checks it (EIP-712 signature, v 27/28, low s,
// validity window, nonce reuse, balance). Nothing else is stubbed.
// Usage: node x402-servers.mjs   → prints "READY <port>"; GET /_chain/balance?address=…, POST /_chain/mint?address=…&amount=…
import http from "node:http";
import express from "express";
import * as viem from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { x402Facilitator } from "@x402/core/facilitator";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { paymentMiddleware as paymentMiddlewareV1 } from "x402-express";
import { verify as verifyV1, settle as settleV1 } from "x402/facilitator";
import { usdcChain } from "./usdc-chain.mjs";

const { createWalletClient, custom, publicActions } = viem;
const { USDC, UsdcModel, chain } = usdcChain(viem);
export { USDC };

const SELLER = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const OTHER_SELLER = "0x1111111111111111111111111111111111111111";

// The facilitator's own gas-paying key: a fixed test key, holding nothing.
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const usdc = new UsdcModel();
const client = createWalletClient({ account, chain: baseSepolia, transport: custom({ request: chain(usdc, account.address) }) }).extend(publicActions);

// x402 v2 facilitator, served over HTTP as the resource server's HTTPFacilitatorClient expects.
const facilitatorV2 = registerExactEvmScheme(new x402Facilitator(), { signer: toFacilitatorEvmSigner({ ...client, address: account.address }), networks: "eip155:84532" });

const app = express();
app.use(express.json());
const jsonSafe = (v) => JSON.parse(JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
app.post("/facilitator/v2/verify", async (req, res) => res.json(jsonSafe(await facilitatorV2.verify(req.body.paymentPayload, req.body.paymentRequirements))));
app.post("/facilitator/v2/settle", async (req, res) => res.json(jsonSafe(await facilitatorV2.settle(req.body.paymentPayload, req.body.paymentRequirements))));
app.get("/facilitator/v2/supported", (req, res) => res.json(jsonSafe(facilitatorV2.getSupported())));
// x402 v1 facilitator: the x402 package's own verify and settle.
app.post("/facilitator/v1/verify", async (req, res) => res.json(jsonSafe(await verifyV1(client, req.body.paymentPayload, req.body.paymentRequirements))));
app.post("/facilitator/v1/settle", async (req, res) => res.json(jsonSafe(await settleV1(client, req.body.paymentPayload, req.body.paymentRequirements))));
app.get("/facilitator/v1/supported", (req, res) => res.json({ kinds: [{ x402Version: 1, scheme: "exact", network: "base-sepolia" }] }));

app.get("/_chain/balance", (req, res) => res.json({ balance: usdc.balanceOf(req.query.address).toString() }));
app.post("/_chain/mint", (req, res) => {
  usdc.mint(req.query.address, BigInt(req.query.amount));
  res.json({ balance: usdc.balanceOf(req.query.address).toString() });
});
app.get("/_chain/transfers", (req, res) => res.json(usdc.transfers));

const server = http.createServer(app);
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const base = `http://127.0.0.1:${port}`;

const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: `${base}/facilitator/v2` })).register("eip155:84532", new ExactEvmScheme());
const route = (price, payTo, description) => ({ accepts: { scheme: "exact", price, network: "eip155:84532", payTo }, description, mimeType: "application/json" });
app.use(paymentMiddleware({
  "GET /v2/weather": route("$0.01", SELLER, "Weather report"),
  "GET /v2/other-payee": route("$0.01", OTHER_SELLER, "Same price, another payee"),
  "GET /v2/dearer": route("$0.02", SELLER, "Another price"),
}, resourceServer));
app.use(paymentMiddlewareV1(SELLER, {
  "GET /v1/weather": { price: "$0.01", network: "base-sepolia", config: { description: "Weather report (v1)" } },
}, { url: `${base}/facilitator/v1` }));
app.get("/v2/weather", (req, res) => res.json({ report: "sunny", version: 2 }));
app.get("/v2/other-payee", (req, res) => res.json({ report: "paid elsewhere" }));
app.get("/v2/dearer", (req, res) => res.json({ report: "dearer" }));
app.get("/v1/weather", (req, res) => res.json({ report: "sunny", version: 1 }));
app.use((err, req, res, next) => { console.error(err); res.status(500).json({ error: String(err?.message ?? err) }); });

console.log(`READY ${port}`);
