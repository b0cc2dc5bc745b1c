// Assent web app: the end-to-end encrypted vault (docs/vault.md). app.js loads this file the first time the vault is
// used (the Vault tab, or approving a vault request), so the app's first load stays small. WebCrypto does every
// primitive (X25519 of RFC 7748, HKDF-SHA256 of RFC 5869, AES-256-GCM); only the framing of docs/vault.md §2 is here,
// because that framing is the format. Plain ES2020, no dependencies, no build step.
'use strict';
(() => {
  const subtle = crypto.subtle;
  const utf8 = new TextEncoder();
  const VERSION = 1, NONCE = 12, KEY = 32, WRAPPED = 1 + 32 + NONCE + KEY + 16, OVERHEAD = 1 + NONCE + 16;
  const MAX_ITEM = 1024 * 1024;
  const ITEM_LABEL = utf8.encode('assent-vault-item-v1'), WRAP_LABEL = utf8.encode('assent-vault-wrap-v1'), KEY_LABEL = utf8.encode('assent-vault-key-v1');
  // docs/vault.md §6: what an item's name may hold (the server refuses anything else).
  const NAME = /^[A-Za-z0-9._@+/-]{1,128}$/;

  /** Vault bytes that do not open or do not parse: the server or the network changed them, or they belong elsewhere. */
  class VaultError extends Error { constructor(m) { super(m); this.name = 'VaultError'; } }

  // ---- bytes ---------------------------------------------------------------------
  const b64e = (buf) => {
    const b = new Uint8Array(buf); let s = '';
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const b64d = (text) => {
    if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) throw new VaultError('not base64url');
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  };
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const random = (n) => crypto.getRandomValues(new Uint8Array(n));
  const sha256 = async (data) => new Uint8Array(await subtle.digest('SHA-256', data));
  // len8(x) ‖ x: one length byte (1–255) before each id, so neighbouring values cannot shift into each other (§2.2).
  const framed = (text) => {
    const b = utf8.encode(text);
    if (b.length < 1 || b.length > 255) throw new VaultError('an id is 1 to 255 UTF-8 bytes');
    return concat(Uint8Array.of(b.length), b);
  };
  const u32be = (n) => {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new VaultError('a version is a 32-bit unsigned number');
    const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b;
  };
  const key32 = (k) => {
    const b = k instanceof Uint8Array ? k : new Uint8Array(k);
    if (b.length !== KEY) throw new VaultError('a key is 32 bytes');
    return b;
  };

  // ---- the format, version 1 (docs/vault.md §1–2) ----------------------------------
  const itemAad = (itemId, version) => concat(ITEM_LABEL, framed(itemId), u32be(version));
  const wrapAad = (itemId, version, kid) => concat(WRAP_LABEL, framed(itemId), u32be(version), framed(kid));
  const keyProof = (userId, deviceId, publicKey) => concat(KEY_LABEL, framed(userId), framed(deviceId), key32(publicKey));
  // RFC 7638 thumbprint of the OKP JWK (members in lexicographic order, no whitespace; RFC 8037 §2).
  const keyId = async (publicKey) => b64e(await sha256(utf8.encode('{"crv":"X25519","kty":"OKP","x":"' + b64e(key32(publicKey)) + '"}')));

  const gcm = (key, usage) => subtle.importKey('raw', key32(key), 'AES-GCM', false, [usage]);
  const x25519Public = (raw) => subtle.importKey('raw', key32(raw), { name: 'X25519' }, true, []);
  const rawPublic = async (publicKey) => new Uint8Array(await subtle.exportKey('raw', publicKey));

  /** Sealed = 0x01 ‖ nonce ‖ AES-256-GCM(K, nonce, plaintext, ItemAad) (§2.1). The nonce is for test vectors only. */
  async function sealItem(itemKey, itemId, version, plaintext, nonce = random(NONCE)) {
    const sealed = await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: itemAad(itemId, version), tagLength: 128 },
      await gcm(itemKey, 'encrypt'), plaintext);
    return concat(Uint8Array.of(VERSION), nonce, new Uint8Array(sealed));
  }

  async function openItem(itemKey, itemId, version, sealed) {
    if (sealed.length < OVERHEAD || sealed[0] !== VERSION) throw new VaultError('not a version 1 sealed item');
    const aad = itemAad(itemId, version), key = await gcm(itemKey, 'decrypt');
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: sealed.subarray(1, 1 + NONCE), additionalData: aad, tagLength: 128 },
        key, sealed.subarray(1 + NONCE)));
    } catch { throw new VaultError('the sealed item does not open: tampered, or not this item, version or key'); }
  }

  // W = HKDF-SHA256(IKM = X25519(own private, other public), salt = E ‖ R, info = the wrap label) (§2.2).
  async function wrappingKey(privateKey, otherPublic, E, R) {
    let z;
    try {
      z = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: await x25519Public(otherPublic) }, privateKey, 256));
    } catch { throw new VaultError('the wrapped key\u2019s ephemeral key is a small-order point'); }
    // RFC 7748 §6.1: an all-zero shared secret is refused (WebCrypto throws on it as well).
    if (z.every((b) => b === 0)) throw new VaultError('the wrapped key\u2019s ephemeral key is a small-order point');
    const ikm = await subtle.importKey('raw', z, 'HKDF', false, ['deriveBits']);
    z.fill(0);
    return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: concat(E, R), info: WRAP_LABEL }, ikm, 256));
  }

  /** A fresh ephemeral pair for one wrap (its private half is never extractable) — or, for test vectors, a given private key. */
  async function ephemeralPair(privateRaw) {
    if (!privateRaw) return subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
    return importPrivate(privateRaw);
  }

  /** An X25519 private key given as 32 bytes (the recovery key, test vectors): PKCS#8 of RFC 8410 §7 around the raw key. */
  async function importPrivate(privateRaw) {
    const pkcs8 = concat(Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20), key32(privateRaw));
    const privateKey = await subtle.importKey('pkcs8', pkcs8, { name: 'X25519' }, true, ['deriveBits']);
    const { x } = await subtle.exportKey('jwk', privateKey);
    return { privateKey, publicKey: await x25519Public(b64d(x)) };
  }

  /** Wrapped = 0x01 ‖ E ‖ nonce ‖ AES-256-GCM(W, nonce, K, WrapAad) (§2.2). The ephemeral key and nonce are for test vectors only. */
  async function wrapKey(itemKey, itemId, version, recipientPublic, ephemeralPrivate, nonce = random(NONCE)) {
    const R = key32(recipientPublic);
    const e = await ephemeralPair(ephemeralPrivate);
    const E = await rawPublic(e.publicKey);
    const W = await wrappingKey(e.privateKey, R, E, R);
    const aad = wrapAad(itemId, version, await keyId(R));
    const sealed = await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, await gcm(W, 'encrypt'), key32(itemKey));
    W.fill(0);
    return concat(Uint8Array.of(VERSION), E, nonce, new Uint8Array(sealed));
  }

  /** Unwraps an item key with a recipient key pair ({privateKey, publicKey} CryptoKeys). */
  async function unwrapKey(wrapped, itemId, version, pair) {
    if (wrapped.length !== WRAPPED || wrapped[0] !== VERSION) throw new VaultError('not a version 1 wrapped key of ' + WRAPPED + ' bytes');
    const R = await rawPublic(pair.publicKey), E = wrapped.subarray(1, 33);
    const W = await wrappingKey(pair.privateKey, E, E, R);
    const aad = wrapAad(itemId, version, await keyId(R)), key = await gcm(W, 'decrypt');
    W.fill(0);
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: wrapped.subarray(33, 45), additionalData: aad, tagLength: 128 }, key, wrapped.subarray(45)));
    } catch { throw new VaultError('the wrapped key does not open: tampered, or not this item, version or recipient'); }
  }

  // ---- recipient keys and their proofs (docs/vault.md §1, §3 step 1) --------------------
  // An ES256 WebAuthn signature is DER (WebAuthn §6.5.6); WebCrypto verifies r ‖ s.
  function derToRaw(der) {
    const int = (at) => {
      if (der[at] !== 0x02) throw new VaultError('not a DER signature');
      const len = der[at + 1];
      let v = der.subarray(at + 2, at + 2 + len);
      while (v.length > 32 && v[0] === 0) v = v.subarray(1);
      if (v.length > 32) throw new VaultError('not a P-256 signature');
      return [concat(new Uint8Array(32 - v.length), v), at + 2 + len];
    };
    if (der[0] !== 0x30) throw new VaultError('not a DER signature');
    const at = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
    const [r, next] = int(at), [s] = int(next);
    return concat(r, s);
  }

  // A device's signing key from the owner's DID document (a JWK): Ed25519 for CLI devices; ES256, EdDSA or RS256 for passkeys.
  async function verifyWith(jwk, signature, data) {
    const pick = (...names) => Object.fromEntries(names.filter((n) => jwk[n] !== undefined).map((n) => [n, jwk[n]]));
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
      return subtle.verify('Ed25519', await subtle.importKey('jwk', pick('kty', 'crv', 'x'), 'Ed25519', false, ['verify']), signature, data);
    }
    if (jwk.kty === 'EC' && jwk.crv === 'P-256') {
      const k = await subtle.importKey('jwk', pick('kty', 'crv', 'x', 'y'), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
      return subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, k, derToRaw(signature), data);
    }
    if (jwk.kty === 'RSA') {
      const k = await subtle.importKey('jwk', pick('kty', 'n', 'e'), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
      return subtle.verify('RSASSA-PKCS1-v1_5', k, signature, data);
    }
    return false;
  }

  /**
   * Checks a registered key's proof (docs/vault.md §1): its kid, and the signature of the device that registered it over
   * KeyProof(user id, device id or "recovery", P) — Ed25519 directly, or a passkey assertion with user verification whose
   * challenge is SHA-256(KeyProof). The signer's key comes from the owner's DID document. True only if all of it holds.
   */
  async function verifyKey(key, userId, did, doc, rpId) {
    try {
      const P = b64d(key.public_key), proof = key.proof || {};
      if (await keyId(P) !== key.kid) return false;
      const recovery = key.kind === 'recovery';
      if (!recovery && proof.signer_device_id !== key.device_id) return false;
      const method = (doc.verificationMethod || []).find((m) => m.id === did + '#' + proof.signer_device_id);
      if (!method || !method.publicKeyJwk) return false;
      const message = keyProof(userId, recovery ? 'recovery' : key.device_id, P);
      let signed = message;
      if (proof.authenticator_data || proof.client_data_json) {
        const clientDataJson = b64d(proof.client_data_json), authData = b64d(proof.authenticator_data);
        const client = JSON.parse(new TextDecoder().decode(clientDataJson));
        // WebAuthn §7.2: the ceremony type, the challenge, the RP id's hash, and the UV flag (bit 2).
        if (client.type !== 'webauthn.get' || client.challenge !== b64e(await sha256(message))) return false;
        if (authData.length < 37 || b64e(authData.subarray(0, 32)) !== b64e(await sha256(utf8.encode(rpId))) || !(authData[32] & 0x04)) return false;
        signed = concat(authData, await sha256(clientDataJson));
      }
      return await verifyWith(method.publicKeyJwk, b64d(proof.signature), signed);
    } catch { return false; }
  }

  const format = {
    VaultError, b64e, b64d, itemAad, wrapAad, keyProof, keyId, sealItem, openItem, wrapKey, unwrapKey, importPrivate, verifyKey, MAX_ITEM, NAME,
  };

  // ---- this browser's key (docs/vault.md §1): non-extractable, in IndexedDB, one per user and passkey ----
  const DB = 'assent-vault', STORE = 'keys';
  function idb(mode, act) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result, tx = db.transaction(STORE, mode), req = act(tx.objectStore(STORE));
        tx.oncomplete = () => { db.close(); resolve(req.result); };
        tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
      };
    });
  }
  const slot = (session) => session.user_id + '/' + session.device_id;

  /** The app's view of the vault: ctx carries app.js's helpers (api, el, status, failed, assertion, confirmIn, session). */
  function attach(ctx) {
    const $ = (id) => document.getElementById(id);
    const base = '/webauthn/vault';
    const V = { key: null };

    async function ownKey() {
      const s = ctx.session();
      if (!V.key || V.key.slot !== slot(s)) V.key = (await idb('readonly', (st) => st.get(slot(s)))) || null;
      return V.key;
    }

    // The owner's recipient keys, each checked against the DID document; a key whose proof fails is refused (§3 step 1).
    async function checkedKeys() {
      const s = ctx.session();
      const [list, doc] = await Promise.all([ctx.api('GET', base + '/keys'), ctx.api('GET', '/users/' + encodeURIComponent(s.user_id) + '/did.json')]);
      for (const k of list.keys) {
        if (!(await verifyKey(k, s.user_id, s.user_did, doc, s.rp_id))) {
          throw new VaultError('The key ' + k.kid + ' the server lists for your vault has no valid proof from your devices. Nothing was encrypted to it.');
        }
      }
      return list.keys;
    }

    // Creates this browser's X25519 key and registers it with a passkey assertion over SHA-256(KeyProof) (§1), signed by
    // the passkey this session signed in with, so that the key belongs to that device.
    async function setUp() {
      const s = ctx.session();
      let rec = await ownKey();
      if (!rec) {
        const pair = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
        const pub = await rawPublic(pair.publicKey);
        rec = { slot: slot(s), pair, public_key: b64e(pub), kid: await keyId(pub) };
        await idb('readwrite', (st) => st.put(rec, rec.slot));
        V.key = rec;
      }
      const challenge = await sha256(keyProof(s.user_id, s.device_id, b64d(rec.public_key)));
      const proof = await ctx.assertion(challenge, s.rp_id, s.credential_id ? [s.credential_id] : s.credentials);
      const r = await ctx.api('POST', base + '/keys', { public_key: rec.public_key, ...proof });
      return r;
    }

    async function registered() {
      const rec = await ownKey();
      if (!rec) return false;
      const keys = (await ctx.api('GET', base + '/keys')).keys;
      return keys.some((k) => k.kid === rec.kid && k.device_id === ctx.session().device_id);
    }

    async function load() {
      const ready = await registered();
      $('vault-setup').hidden = ready;
      $('vault-form').hidden = !ready;
      const list = (await ctx.api('GET', base + '/items')).items;
      $('vault-items').replaceChildren(...list.map((x) => {
        const li = ctx.el('li', { 'data-name': x.name },
          ctx.el('span', { class: 'grow', show: x.name }),
          ctx.el('span', { class: 'small', text: 'version ' + x.version + ' · ' + size(x.size) + ' · ' + new Date(x.updated_at).toLocaleString() }));
        li.append(ctx.el('button', { type: 'button', class: 'deny', text: 'Remove', 'aria-label': 'Remove ' + x.name, onclick: () => ctx.confirmIn(li,
          'Remove ' + x.name + ' and all its versions? No agent can be given it afterwards, and it cannot be undone.', 'Remove', async () => {
            try { await ctx.api('DELETE', base + '/items/' + encodeURIComponent(x.name)); ctx.status('Removed ' + x.name + '.'); load(); } catch (e) { ctx.failed(e); }
          }) }));
        return li;
      }));
      $('no-vault-items').hidden = list.length > 0;
    }
    const size = (n) => (n < 1024 ? n + ' bytes' : n < 1024 * 1024 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(2) + ' MiB');

    /** Encrypts and stores a new item or a new version of one (docs/vault.md §3). */
    async function put(name, plaintext) {
      if (!NAME.test(name) || name.split('/').some((x) => x === '' || x === '.' || x === '..')) {
        throw new VaultError('A name is 1 to 128 letters, digits and . _ @ + / -, with no empty, "." or ".." part between slashes.');
      }
      if (plaintext.length > MAX_ITEM) throw new VaultError('A secret is at most 1 MiB.');
      const keys = await checkedKeys();
      let id = b64e(random(16)), version = 1;
      try {
        const d = await ctx.api('GET', base + '/items/' + encodeURIComponent(name));
        id = d.id; version = d.version + 1;
      } catch (e) { if (e.status !== 404) throw e; }
      const K = random(KEY);
      try {
        const ciphertext = b64e(await sealItem(K, id, version, plaintext));
        const wraps = [];
        for (const k of keys) wraps.push({ kid: k.kid, wrapped: b64e(await wrapKey(K, id, version, b64d(k.public_key))) });
        return await ctx.api('PUT', base + '/items/' + encodeURIComponent(name), { id, version, ciphertext, wraps });
      } finally { K.fill(0); }
    }

    // Unwraps this browser's copy of an item version's key and checks it opens the sealed version (docs/vault.md §4 step 2).
    async function itemKey(name, itemId, version) {
      const rec = await ownKey();
      if (!rec) throw new VaultError('This browser has no vault key: set up the vault here under Vault first, or approve on another device.');
      const v = await ctx.api('GET', base + '/items/' + encodeURIComponent(name) + '/versions/' + version + '?kid=' + encodeURIComponent(rec.kid));
      const K = await unwrapKey(b64d(v.wrapped), itemId, version, rec.pair);
      (await openItem(K, itemId, version, b64d(v.ciphertext))).fill(0);
      return K;
    }

    /** The release of an approved vault_release: K wrapped to the agent's key, from the signed detail alone (§4 step 2). */
    async function release(d) {
      if (typeof d.item !== 'string' || typeof d.item_id !== 'string' || !Number.isInteger(d.version) || typeof d.recipient_key !== 'string') {
        throw new VaultError('This release request is not complete: it does not name the item, its version and the agent\u2019s key.');
      }
      const K = await itemKey(d.item, d.item_id, d.version);
      try { return b64e(await wrapKey(K, d.item_id, d.version, b64d(d.recipient_key))); } finally { K.fill(0); }
    }

    /** Before approving a vault_rewrap: the new key must be the owner's, with a valid proof (docs/vault.md §5.1). */
    async function checkRewrap(d) {
      const keys = await checkedKeys();
      const k = keys.find((x) => x.kid === d.kid);
      if (!k || k.public_key !== d.public_key || (d.device_id && k.device_id !== d.device_id)) {
        throw new VaultError('The key this request names is not one of your registered vault keys. Deny it.');
      }
      const rec = await ownKey();
      if (!rec) throw new VaultError('This browser has no vault key, so it cannot share your secrets. Approve on another device.');
      // The new key's own device (this browser, right after its set-up) holds nothing to share: approving here would give
      // the new key nothing. Another device that opens the items must approve.
      const [own, items] = await Promise.all([ctx.api('GET', base + '/wraps?kid=' + encodeURIComponent(rec.kid)), ctx.api('GET', base + '/items')]);
      if (k.kid === rec.kid || (!own.wraps.length && items.items.length)) {
        throw new VaultError('This browser cannot open your secrets yet, so it cannot share them. Approve this on a device that can.');
      }
      return k;
    }

    /** Wraps every item key this browser holds to the new key, a page at a time (docs/vault.md §5.1). */
    async function rewrap(k) {
      const rec = await ownKey(), R = b64d(k.public_key);
      let after = null, count = 0;
      do {
        const page = await ctx.api('GET', base + '/wraps?kid=' + encodeURIComponent(rec.kid) + (after ? '&after=' + encodeURIComponent(after) : ''));
        const wraps = [];
        for (const w of page.wraps) {
          const K = await unwrapKey(b64d(w.wrapped), w.item_id, w.version, rec.pair);
          try { wraps.push({ item_id: w.item_id, version: w.version, wrapped: b64e(await wrapKey(K, w.item_id, w.version, R)) }); } finally { K.fill(0); }
        }
        if (wraps.length) await ctx.api('POST', base + '/wraps', { kid: k.kid, wraps });
        count += wraps.length;
        after = page.next;
      } while (after);
      return count;
    }

    // The panel's controls are wired once, when this file arrives.
    $('vault-setup-go').addEventListener('click', async (ev) => {
      ev.target.disabled = true;
      ctx.status('Confirm with your passkey to give this browser its vault key…');
      try {
        const r = await setUp();
        ctx.status(r && r.rewrap_approval_id
          ? 'This browser has its vault key. Approve the request on one of your other devices to open your existing secrets here.'
          : 'This browser has its vault key.');
        await load();
      } catch (e) { ctx.failed(e); } finally { ev.target.disabled = false; }
    });
    $('vault-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = ev.target.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const file = $('vault-file').files[0];
        if (file && file.size > MAX_ITEM) throw new VaultError('A secret is at most 1 MiB; this file is ' + size(file.size) + '.');
        const data = file ? new Uint8Array(await file.arrayBuffer()) : utf8.encode($('vault-text').value);
        if (!data.length) throw new VaultError('Type a secret or choose a file.');
        ctx.status('Encrypting…');
        const name = $('vault-name').value.trim();
        const r = await put(name, data);
        data.fill(0);
        ev.target.reset();
        ctx.status('Saved ' + r.name + ' (version ' + r.version + '), encrypted on this device.');
        await load();
      } catch (e) { ctx.failed(e); } finally { button.disabled = false; }
    });

    return { load, put, release, checkRewrap, rewrap, setUp, ownKey };
  }

  window.AssentVault = { format, attach };
})();
