// The x402 protocol authors' own reference servers, run locally with only the chain replaced (docs/payments.md §8):
// - x402 v2: @x402/express paymentMiddleware with @x402/evm's exact scheme, settling through a facilitator built from
//   @x402/core's x402Facilitator and @x402/evm's exact facilitator scheme;
// - x402 v1: x402-express paymentMiddleware, settling through x402's own facilitator verify/settle.
// Both facilitators talk to "Base Sepolia" through viem, whose custom transport answers JSON-RPC from the USDC model
// below: EIP-3009 transferWithAuthorization checked as FiatToken v2 checks it (EIP-712 signature, v 27/28, low s,
// validity window, nonce reuse, balance). Nothing else is stubbed.
// Usage: node x402-servers.mjs   → prints "READY <port>"; GET /_chain/balance?address=…, POST /_chain/mint?address=…&amount=…
import http from "node:http";
import express from "express";
import {
  createWalletClient, custom, publicActions, decodeFunctionData, encodeFunctionResult, parseTransaction, keccak256, hashTypedData,
  recoverAddress, encodeEventTopics, encodeAbiParameters, getAddress, toHex, serializeSignature,
} from "viem";
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

export const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const CHAIN_ID = 84532;
const SELLER = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const OTHER_SELLER = "0x1111111111111111111111111111111111111111";
// secp256k1 order / 2: FiatToken's ECRecover refuses any s above it (EIP-2).
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

const usdcAbi = [
  { type: "function", name: "balanceOf", stateMutability: "view", inputs: [{ name: "account", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "name", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] },
  { type: "function", name: "version", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] },
  { type: "function", name: "decimals", stateMutability: "view", inputs: [], outputs: [{ type: "uint8" }] },
  {
    type: "function", name: "authorizationState", stateMutability: "view",
    inputs: [{ name: "authorizer", type: "address" }, { name: "nonce", type: "bytes32" }], outputs: [{ type: "bool" }],
  },
  {
    type: "function", name: "transferWithAuthorization", stateMutability: "nonpayable",
    inputs: [
      { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" }, { name: "validAfter", type: "uint256" },
      { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" }, { name: "v", type: "uint8" }, { name: "r", type: "bytes32" },
      { name: "s", type: "bytes32" },
    ],
    outputs: [],
  },
  {
    type: "function", name: "transferWithAuthorization", stateMutability: "nonpayable",
    inputs: [
      { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" }, { name: "validAfter", type: "uint256" },
      { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" }, { name: "signature", type: "bytes" },
    ],
    outputs: [],
  },
  {
    type: "event", name: "Transfer", anonymous: false,
    inputs: [{ name: "from", type: "address", indexed: true }, { name: "to", type: "address", indexed: true }, { name: "value", type: "uint256", indexed: false }],
  },
];

class Revert extends Error {
  constructor(reason) {
    super(`execution reverted: ${reason}`);
    this.code = 3;
    this.data = "0x";
  }
}

/** USDC (FiatToken v2) as far as x402 touches it: balances and EIP-3009 transferWithAuthorization. */
class UsdcModel {
  balances = new Map();
  used = new Set();
  transfers = [];

  balanceOf(a) { return this.balances.get(getAddress(a)) ?? 0n; }

  call(data, commit) {
    const { functionName, args } = decodeFunctionData({ abi: usdcAbi, data });
    const result = (value) => encodeFunctionResult({ abi: usdcAbi, functionName, result: value });
    switch (functionName) {
      case "balanceOf": return { output: result(this.balanceOf(args[0])) };
      case "name": return { output: result("USDC") };
      case "version": return { output: result("2") };
      case "decimals": return { output: result(6) };
      case "authorizationState": return { output: result(this.used.has(`${getAddress(args[0])}:${args[1].toLowerCase()}`)) };
      case "transferWithAuthorization": return this.transferWithAuthorization(args, commit);
      default: throw new Revert(`no function ${functionName}`);
    }
  }

  transferWithAuthorization(args, commit) {
    const [from, to, value, validAfter, validBefore, nonce] = args;
    let v, r, s;
    if (args.length === 9) {
      [v, r, s] = [Number(args[6]), args[7], args[8]];
    } else {
      const sig = args[6];
      if (sig.length !== 132) throw new Revert("ECRecover: invalid signature length");
      [r, s, v] = [`0x${sig.slice(2, 66)}`, `0x${sig.slice(66, 130)}`, parseInt(sig.slice(130), 16)];
    }
    const now = BigInt(Math.floor(Date.now() / 1000));
    // FiatTokenV2 _requireValidAuthorization.
    if (!(now > validAfter)) throw new Revert("FiatTokenV2: authorization is not yet valid");
    if (!(now < validBefore)) throw new Revert("FiatTokenV2: authorization is expired");
    const key = `${getAddress(from)}:${nonce.toLowerCase()}`;
    if (this.used.has(key)) throw new Revert("FiatTokenV2: authorization is used or canceled");
    // ECRecover.recover: s in the lower half order, v 27 or 28.
    if (BigInt(s) > HALF_N) throw new Revert("ECRecover: invalid signature 's' value");
    if (v !== 27 && v !== 28) throw new Revert("ECRecover: invalid signature 'v' value");
    const digest = hashTypedData({
      domain: { name: "USDC", version: "2", chainId: CHAIN_ID, verifyingContract: USDC },
      types: {
        TransferWithAuthorization: [
          { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" },
          { name: "validAfter", type: "uint256" }, { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "TransferWithAuthorization",
      message: { from, to, value, validAfter, validBefore, nonce },
    });
    return recoverAddress({ hash: digest, signature: serializeSignature({ r, s, v: BigInt(v) }) }).then((signer) => {
      if (getAddress(signer) !== getAddress(from)) throw new Revert("FiatTokenV2: invalid signature");
      if (this.balanceOf(from) < value) throw new Revert("ERC20: transfer amount exceeds balance");
      if (commit) {
        this.used.add(key);
        this.balances.set(getAddress(from), this.balanceOf(from) - value);
        this.balances.set(getAddress(to), this.balanceOf(to) + value);
        this.transfers.push({ from: getAddress(from), to: getAddress(to), value: value.toString(), nonce });
      }
      return {
        output: "0x",
        logs: [{ address: USDC, topics: encodeEventTopics({ abi: usdcAbi, eventName: "Transfer", args: { from, to } }), data: encodeAbiParameters([{ type: "uint256" }], [value]) }],
      };
    });
  }
}

const usdc = new UsdcModel();
const receipts = new Map();
let blockNumber = 1n;
let txCount = 0;

function block() {
  return {
    number: toHex(blockNumber), hash: keccak256(toHex(blockNumber)), parentHash: keccak256(toHex(blockNumber - 1n)), timestamp: toHex(Math.floor(Date.now() / 1000)),
    baseFeePerGas: "0x1", gasLimit: "0x1c9c380", gasUsed: "0x0", transactions: [], miner: SELLER, difficulty: "0x0", extraData: "0x", logsBloom: `0x${"00".repeat(256)}`,
    nonce: "0x0000000000000000", sha3Uncles: keccak256("0x"), size: "0x0", stateRoot: keccak256("0x"), receiptsRoot: keccak256("0x"), transactionsRoot: keccak256("0x"),
    uncles: [], mixHash: keccak256("0x"), totalDifficulty: "0x0",
  };
}

/** The chain as viem's custom transport sees it: JSON-RPC methods x402's facilitators use. */
async function rpc({ method, params }) {
  switch (method) {
    case "eth_chainId": return toHex(CHAIN_ID);
    case "eth_blockNumber": return toHex(blockNumber);
    case "eth_getBlockByNumber": return block();
    case "eth_gasPrice": case "eth_maxPriorityFeePerGas": return "0x1";
    case "eth_feeHistory": return { oldestBlock: toHex(blockNumber), baseFeePerGas: ["0x1", "0x1"], gasUsedRatio: [0.5], reward: [["0x1"]] };
    case "eth_estimateGas": return "0x30000";
    case "eth_getTransactionCount": return toHex(txCount);
    case "eth_getCode": return getAddress(params[0]) === USDC ? "0x6080604052" : "0x";
    case "eth_call": {
      const { to, data } = params[0];
      if (!to || getAddress(to) !== USDC) throw new Revert("no contract there");
      return (await usdc.call(data, false)).output;
    }
    case "eth_sendRawTransaction": {
      const raw = params[0];
      const tx = parseTransaction(raw);
      const hash = keccak256(raw);
      txCount++;
      blockNumber++;
      let status = "0x1", logs = [];
      try {
        if (!tx.to || getAddress(tx.to) !== USDC) throw new Revert("no contract there");
        logs = (await usdc.call(tx.data, true)).logs ?? [];
      } catch (e) {
        if (!(e instanceof Revert)) throw e;
        status = "0x0";
      }
      const b = block();
      receipts.set(hash, {
        transactionHash: hash, transactionIndex: "0x0", blockHash: b.hash, blockNumber: b.number, from: account.address, to: tx.to, cumulativeGasUsed: "0x30000",
        gasUsed: "0x30000", effectiveGasPrice: "0x1", contractAddress: null, logsBloom: `0x${"00".repeat(256)}`, status, type: "0x2",
        logs: logs.map((l, i) => ({ ...l, blockHash: b.hash, blockNumber: b.number, transactionHash: hash, transactionIndex: "0x0", logIndex: toHex(i), removed: false })),
      });
      return hash;
    }
    case "eth_getTransactionReceipt": return receipts.get(params[0]) ?? null;
    case "eth_getTransactionByHash": {
      const r = receipts.get(params[0]);
      return r ? { hash: r.transactionHash, blockHash: r.blockHash, blockNumber: r.blockNumber, from: r.from, to: r.to, transactionIndex: "0x0", nonce: "0x0", value: "0x0", input: "0x", gas: "0x30000", type: "0x2", chainId: toHex(CHAIN_ID), v: "0x0", r: "0x1", s: "0x1" } : null;
    }
    default: throw new Error(`the chain stand-in does not answer ${method}`);
  }
}

// The facilitator's own gas-paying key: a fixed test key, holding nothing.
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const client = createWalletClient({ account, chain: baseSepolia, transport: custom({ request: rpc }) }).extend(publicActions);

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
  const a = getAddress(req.query.address);
  usdc.balances.set(a, usdc.balanceOf(a) + BigInt(req.query.amount));
  res.json({ balance: usdc.balanceOf(a).toString() });
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
