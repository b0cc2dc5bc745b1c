// "Base Sepolia" as viem's custom transport sees it: a JSON-RPC stand-in holding a model of USDC (FiatToken v2) as
// far as EIP-3009 payments touch it. transferWithAuthorization is checked as FiatToken v2 checks it: the EIP-712
// signature, v 27/28 and low s (ECRecover), the validity window, nonce reuse, and the balance. One model for both
// payment interop servers (x402-servers.mjs, mpp/mpp-servers.mjs): each passes its own viem, because the two
// directories pin different viem versions (see mpp/package.json), and this module imports nothing itself.

/** The chain stand-in built on <c>viem</c> (the importing server's own copy of the package). */
export function usdcChain(viem) {
  const {
    decodeFunctionData, encodeFunctionResult, parseTransaction, keccak256, hashTypedData, recoverAddress, encodeEventTopics, encodeAbiParameters,
    getAddress, toHex, serializeSignature,
  } = viem;

  const USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
  const CHAIN_ID = 84532;
  // secp256k1 order / 2: FiatToken's ECRecover refuses any s above it (EIP-2).
  const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

  const transferWithAuthorizationBytes = {
    type: "function", name: "transferWithAuthorization", stateMutability: "nonpayable",
    inputs: [
      { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" }, { name: "validAfter", type: "uint256" },
      { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" }, { name: "signature", type: "bytes" },
    ],
    outputs: [],
  };

  /** The overload a settler calls with a 65-byte signature. */
  const transferWithAuthorizationAbi = [transferWithAuthorizationBytes];

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
    transferWithAuthorizationBytes,
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

  class UsdcModel {
    balances = new Map();
    used = new Set();
    transfers = [];

    balanceOf(a) { return this.balances.get(getAddress(a)) ?? 0n; }

    mint(a, amount) { this.balances.set(getAddress(a), this.balanceOf(a) + amount); }

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

    async transferWithAuthorization(args, commit) {
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
      const signer = await recoverAddress({ hash: digest, signature: serializeSignature({ r, s, v: BigInt(v) }) });
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
    }
  }

  /** The chain's JSON-RPC methods, as a settler's viem client uses them; <c>sender</c> is the address transactions are sent from. */
  function chain(usdc, sender) {
    const receipts = new Map();
    let blockNumber = 1n;
    let txCount = 0;
    const block = () => ({
      number: toHex(blockNumber), hash: keccak256(toHex(blockNumber)), parentHash: keccak256(toHex(blockNumber - 1n)), timestamp: toHex(Math.floor(Date.now() / 1000)),
      baseFeePerGas: "0x1", gasLimit: "0x1c9c380", gasUsed: "0x0", transactions: [], miner: sender, difficulty: "0x0", extraData: "0x", logsBloom: `0x${"00".repeat(256)}`,
      nonce: "0x0000000000000000", sha3Uncles: keccak256("0x"), size: "0x0", stateRoot: keccak256("0x"), receiptsRoot: keccak256("0x"), transactionsRoot: keccak256("0x"),
      uncles: [], mixHash: keccak256("0x"), totalDifficulty: "0x0",
    });
    return async function rpc({ method, params }) {
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
            transactionHash: hash, transactionIndex: "0x0", blockHash: b.hash, blockNumber: b.number, from: sender, to: tx.to, cumulativeGasUsed: "0x30000",
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
    };
  }

  return { USDC, CHAIN_ID, usdcAbi, transferWithAuthorizationAbi, Revert, UsdcModel, chain };
}
