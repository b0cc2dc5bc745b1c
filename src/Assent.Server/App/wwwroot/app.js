// Assent approver web app. Plain ES2020, no dependencies, no build step.
// Every piece of server data reaches the page through textContent, never innerHTML, and through
// shown(): what could hide or reorder the text a human approves is displayed as ⟨U+XXXX⟩.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TIMEOUT_MS = 120000; // every navigator.credentials call is abortable and bounded
  // pending: id → its card (li, with the request as li.request); seen: ids the open stream announced or settled since it opened.
  // loaded: the server's pending list has arrived since sign-in (until then the list says it is checking).
  const S = { session: null, stream: null, pending: new Map(), seen: null, ticker: 0, loaded: false };

  // ---- helpers -------------------------------------------------------------------
  const b64e = (buf) => {
    const bytes = new Uint8Array(buf); let s = '';
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const b64d = (text) => {
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  };
  const signal = (ms) => {
    if (AbortSignal.timeout) return AbortSignal.timeout(ms);
    const c = new AbortController(); setTimeout(() => c.abort(), ms); return c.signal;
  };
  // The rule of the server (Assent.Protocol DisplayText): no controls (Cc), format characters (Cf: bidi
  // controls of UAX #9, zero-width characters, tags), line or paragraph separators, unpaired surrogates,
  // private use, unassigned or other Default_Ignorable_Code_Point (Unicode DerivedCoreProperties), but
  // U+FE0E/U+FE0F, which only pick text or emoji presentation. Rows stored before the server refused such
  // text, or sent by another server, still reach the page: each of those code points is shown, not applied.
  const HIDDEN = /(?![\uFE0E\uFE0F])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]/gu;
  const codePoint = (ch) => 'U+' + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
  // For plain-text places (dialogs, the status line).
  const plain = (text) => String(text).replace(HIDDEN, (ch) => '⟨' + codePoint(ch) + '⟩');
  // Progress and results go to a polite status; errors to an alert, announced at once (WAI-ARIA 1.2, roles status and alert).
  const status = (text, error) => {
    $(error ? 'alert' : 'status').textContent = plain(text || '');
    $(error ? 'status' : 'alert').textContent = '';
  };
  // For the page: text nodes, and each hidden code point as a marked span.
  const shown = (text) => {
    const s = String(text);
    const out = [];
    let at = 0;
    for (const m of s.matchAll(HIDDEN)) {
      if (m.index > at) out.push(document.createTextNode(s.slice(at, m.index)));
      const mark = document.createElement('span');
      mark.className = 'hidden-char';
      mark.title = 'hidden character ' + codePoint(m[0]);
      mark.textContent = '⟨' + codePoint(m[0]) + '⟩';
      out.push(mark);
      at = m.index + m[0].length;
    }
    if (at < s.length) out.push(document.createTextNode(s.slice(at)));
    return out;
  };
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v; else if (k === 'show') e.append(...shown(v));
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  // A message belongs to the view it was said in: changing views clears it.
  const show = (view) => {
    if ($('v-' + view).hidden) status('');
    for (const v of ['signin', 'enroll', 'device', 'main']) $('v-' + v).hidden = v !== view;
  };
  const when = (unix) => new Date(unix * 1000).toLocaleString();

  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: 'same-origin' };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const r = await fetch(path, init);
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { if (r.ok) throw new Error('not JSON'); }
    if (!r.ok) { const e = new Error('HTTP ' + r.status); e.status = r.status; e.detail = data && (data.detail || data.title); throw e; }
    return data;
  }
  // Words for people: what happened and what to do next, never "Failed to fetch" or a protocol's field name. The
  // server's own detail is used where it already speaks to people (an invite code, a refused name).
  const WORDS = {
    device: { 400: 'That is not a sign-in code: it has 8 letters, like BCDF-GHJK, as the assent command shows it.',
      404: 'No sign-in is waiting for this code. Check it, or run assent auth login again.',
      409: 'This code has already been used.', 410: 'This code has expired. Run assent auth login again.' },
    signin: { 401: 'This passkey is not registered here, or it was revoked. Try another passkey, or use an invite code.' },
    decide: { 400: 'Your answer could not be read by the server. Reload the page and try again.',
      401: 'Your passkey could not be checked for this request. Try again.',
      403: 'This passkey may not answer this request: it was revoked, or the request is for another account.' },
  };
  function human(e, what) {
    if (e.name === 'NotAllowedError' || e.name === 'AbortError') return 'The passkey request was cancelled or timed out. Nothing was sent.';
    if (e.name === 'InvalidStateError') return 'This device already has a passkey for this account.';
    if (e.name === 'VaultError') return e.message; // vault.js: bytes that do not open, or a key without a proof, said in words
    if (e.status === undefined) return "Can't reach Assent. Check your connection, then try again.";
    if (e.status === 429) return 'Too many attempts. Wait a minute, then try again.';
    if (e.status >= 500) return 'Assent is not answering right now. Try again in a moment.';
    const words = (WORDS[what] || {})[e.status];
    if (words) return words;
    return e.detail ? e.detail.charAt(0).toUpperCase() + e.detail.slice(1) + (/[.!?]$/.test(e.detail) ? '' : '.') : 'Something went wrong. Reload the page and try again.';
  }
  const failed = (e, what) => status(human(e, what), true);

  // ---- passkeys ------------------------------------------------------------------
  async function createPasskey(code, name) {
    const o = await api('POST', '/webauthn/register/options', code ? { code } : {});
    const publicKey = {
      rp: o.rp, challenge: b64d(o.challenge), pubKeyCredParams: o.pubKeyCredParams, timeout: o.timeout,
      user: { id: b64d(o.user.id), name: o.user.name, displayName: o.user.displayName },
      excludeCredentials: o.excludeCredentials.map((c) => ({ type: c.type, id: b64d(c.id) })),
      authenticatorSelection: o.authenticatorSelection, attestation: o.attestation,
    };
    const cred = await navigator.credentials.create({ publicKey, signal: signal(TIMEOUT_MS) });
    return api('POST', '/webauthn/register', {
      client_data_json: b64e(cred.response.clientDataJSON), attestation_object: b64e(cred.response.attestationObject), name: name || undefined,
    });
  }

  async function assertion(challenge, rpId, allow) {
    const cred = await navigator.credentials.get({
      publicKey: {
        challenge, rpId, timeout: TIMEOUT_MS, userVerification: 'required',
        allowCredentials: (allow || []).map((id) => ({ type: 'public-key', id: b64d(id) })),
      },
      signal: signal(TIMEOUT_MS),
    });
    const r = cred.response;
    return {
      credential_id: b64e(cred.rawId), authenticator_data: b64e(r.authenticatorData),
      client_data_json: b64e(r.clientDataJSON), signature: b64e(r.signature),
    };
  }

  async function signIn() {
    const o = await api('POST', '/webauthn/signin/options', {});
    S.session = await api('POST', '/webauthn/signin', await assertion(b64d(o.challenge), o.rpId, []));
  }

  // docs/concepts.md §5.1: the challenge is SHA-256(decision ‖ 0x00 ‖ payload), so the passkey signs this exact request.
  // Progress, result and errors are said on the card itself, where the finger is.
  function say(li, text, error) {
    const f = li.querySelector('.feedback'), x = li.querySelector('.problem');
    (error ? x : f).textContent = text; (error ? f : x).textContent = '';
  }

  async function decide(a, decision, buttons) {
    const li = S.pending.get(a.id);
    if (expired(a) || !li || li.classList.contains('busy')) return;
    const enable = (on) => { if (!on || !expired(a)) buttons.forEach((b) => { b.disabled = !on; }); };
    enable(false);
    li.classList.add('busy');
    performance.mark('assent:tap'); // for the tap-to-token benchmark
    status('');
    // A passkey prompt whose answer cannot be sent wastes a Face ID: check the way to the server first.
    if (!(await reachable())) {
      li.classList.remove('busy');
      say(li, "You're offline, so your passkey was not asked. Try again when you are connected.", true);
      enable(true);
      return;
    }
    // docs/vault.md §4–5: a vault request is prepared before the passkey is asked, so a secret that cannot be shared
    // does not waste a Face ID: a release is re-wrapped for the agent now, a new key's proof is checked now.
    const vr = decision === 'approve' ? vaultDetail(a) : null;
    let release, rewrapKey;
    if (vr) {
      say(li, vr.type === 'vault_release' ? 'Unlocking the secret on this device…' : 'Checking the new key…');
      try {
        const v = await vault();
        if (vr.type === 'vault_release') release = await v.release(vr); else rewrapKey = await v.checkRewrap(vr);
      } catch (e) {
        li.classList.remove('busy');
        say(li, human(e, 'decide'), true);
        enable(true);
        return;
      }
    }
    say(li, 'Waiting for your passkey (Face ID, fingerprint or PIN)…');
    let body;
    try {
      const word = new TextEncoder().encode(decision);
      const payload = b64d(a.payload);
      const input = new Uint8Array(word.length + 1 + payload.length);
      input.set(word, 0); input.set(payload, word.length + 1);
      const challenge = await crypto.subtle.digest('SHA-256', input);
      body = await assertion(challenge, S.session.rp_id, S.session.credentials);
      body.decision = decision;
      if (release) body.vault_release = release;
      performance.mark('assent:asserted');
      // The secrets are shared with the new key only once the human confirmed with the passkey (docs/vault.md §5.1).
      if (rewrapKey) { say(li, 'Sharing your secrets with the new key…'); await (await vault()).rewrap(rewrapKey); }
    } catch (e) {
      li.classList.remove('busy');
      say(li, human(e, 'decide'), true);
      enable(true);
      return;
    }
    send(a, li, body, 0, () => enable(true));
  }

  // Online, and the server answers: an open stream proves it, otherwise one quick read does.
  async function reachable() {
    if (!navigator.onLine) return false;
    if (S.stream && S.stream.readyState === EventSource.OPEN) return true;
    try { await fetch('/webauthn/session', { credentials: 'same-origin', signal: signal(4000) }); return true; } catch { return false; }
  }

  // A signed decision is kept and sent again while the network or the server is away, after 1, 2, 4 … 30 s, and at
  // once when the browser is back online or the stream reconnects. It is valid only until the request expires
  // (docs/concepts.md §5.1: it signs this request's payload), so retrying ends there.
  async function send(a, li, body, attempt, enable) {
    li.resend = null;
    say(li, body.decision === 'approve' ? 'Sending your approval…' : 'Sending your denial…');
    try {
      const r = await api('POST', '/webauthn/approvals/' + encodeURIComponent(a.id) + '/decision', body);
      if (r.state === 'pending') {
        // docs/policies.md §3: a quorum request stays open until enough others decide; the card stays, without
        // buttons, saying where it stands, and leaves when the server settles it.
        li.classList.remove('busy');
        try { a.quorum = (await api('GET', '/webauthn/approvals/' + encodeURIComponent(a.id))).quorum || a.quorum; } catch { /* the line as it was */ }
        decided(li, body.decision);
        return;
      }
      li.classList.replace('busy', 'done');
      say(li, r.state === 'approved' ? '✓ Approved' : '✕ Denied');
      setTimeout(() => removeCard(a.id), 1000);
      loadHistory();
    } catch (e) {
      if ((e.status === undefined || e.status >= 500) && !expired(a) && li.isConnected) {
        const wait = Math.min(30, 2 ** attempt);
        say(li, 'Not sent yet — retrying in ' + wait + ' s. Keep this page open.');
        const again = () => { clearTimeout(li.retry); if (li.resend === again) send(a, li, body, attempt + 1, enable); };
        li.resend = again;
        li.retry = setTimeout(again, wait * 1000);
        return;
      }
      li.classList.remove('busy');
      // docs/http-api.md §10.4: 409 decided elsewhere, 410 expired. Either way the card can do nothing more.
      if (e.status === 409 || e.status === 410) {
        removeCard(a.id);
        status(e.status === 410 ? 'That request expired before your answer arrived. The agent has to ask again.'
          : 'That request was already answered on another device.', true);
        loadHistory();
        return;
      }
      if (li.settled) { removeCard(a.id); return; }
      say(li, expired(a) ? 'Not sent: the request expired before Assent could be reached.' : human(e, 'decide'), true);
      enable();
    }
  }
  const resendAll = () => { for (const li of S.pending.values()) if (li.resend) li.resend(); };
  addEventListener('online', resendAll);

  // ---- pending requests ----------------------------------------------------------
  // An amount in the reader's locale with the currency's own minor units (ISO 4217: 2 for USD, 0 for JPY, 3 for BHD),
  // never fewer digits than were sent: a formatter that rounds would show a different amount from the one approved.
  // Anything that is not a plain decimal, or an unknown currency, is shown as sent.
  function money(amount, currency) {
    const text = String(amount);
    if (/^-?\d+(\.\d+)?$/.test(text)) {
      const decimals = (text.split('.')[1] || '').length;
      try {
        const style = currency ? { style: 'currency', currency: String(currency) } : {};
        const minor = currency ? new Intl.NumberFormat('en', style).resolvedOptions().maximumFractionDigits : decimals;
        // A string keeps every digit (ECMA-402 Intl.NumberFormat v3 formats it as an exact decimal).
        return { text: new Intl.NumberFormat(undefined, { ...style, minimumFractionDigits: minor, maximumFractionDigits: Math.max(minor, decimals) }).format(text) };
      } catch { /* an unknown currency: as sent */ }
    }
    return { show: text + (currency ? ' ' + currency : '') };
  }
  const payee = (d) => d.recipient || d.creditor || d.payee;

  // Readable labels: member names as words ("max_amount" → "Max amount"), known scopes as what they allow.
  const label = (k) => String(k).replace(/_/g, ' ').replace(/^[a-z]/, (c) => c.toUpperCase());
  const SCOPES = { 'approve:action': 'Approve an action', 'payments:write': 'Make a payment', session: 'Sign in a device', offline_access: 'Stay signed in' };
  const scopes = (scope) => String(scope || '').split(' ').filter((x) => x && x !== 'openid').map((x) => SCOPES[x] || x).join(', ');
  // Member names are shown too; nested values as JSON (which writes C0 controls as \u escapes itself).
  const row = (dl, k, v) => { if (v != null && v !== '') dl.append(el('dt', { show: k }), el('dd', { show: typeof v === 'string' ? v : JSON.stringify(v) })); };

  function detailBlock(d, resource, lifted) {
    const box = el('div', { class: 'detail' });
    if (d.amount != null && !lifted) box.append(el('p', { class: 'amount', ...money(d.amount, d.currency) }));
    const dl = el('dl');
    row(dl, 'Kind', typeof d.type === 'string' ? label(d.type) : d.type);
    if (!lifted) row(dl, 'To', payee(d));
    row(dl, 'Where', d.resource || (Array.isArray(d.locations) ? d.locations.join(', ') : d.locations) || resource);
    row(dl, 'Actions', Array.isArray(d.actions) ? d.actions.join(', ') : d.actions);
    for (const [k, v] of Object.entries(d)) {
      if (!['type', 'amount', 'currency', 'recipient', 'creditor', 'payee', 'resource', 'locations', 'actions'].includes(k)) row(dl, label(k), v);
    }
    box.append(dl);
    return box;
  }

  // Who asks: an agent's name is unique only among its owner's agents, so the name, its client id and its owner
  // are shown together, and an agent of someone else is flagged.
  function asker(a) {
    const prefix = { device_login: 'Sign-in request from ', agent_consent: 'Consent request from ' }[a.kind] || '';
    // The card's heading (screen readers list and jump between them): who asks.
    const line = el('h2', { class: 'agent', tabindex: '-1' }, prefix, el('span', { class: 'agent-name', show: a.client_name }));
    if (a.client_id !== a.client_name) line.append(' (', el('span', { class: 'client-id', show: a.client_id }), ')');
    if (a.client_owner) line.append(' by ', el('span', { class: 'owner', show: a.client_owner }));
    return line;
  }
  const foreign = (a) => a.client_owner && S.session && a.client_owner !== S.session.handle
    ? el('p', { class: 'foreign', role: 'note', show: "Another user's agent: it belongs to " + a.client_owner + ', not to you.' }) : null;

  // What the request would do, in a few words, for the buttons' names and the arrival announcement:
  // "pay $1,250.00 to ACME Corp", "sign in a device: …", or the agent's message (shortened).
  function action(a) {
    const v = vaultDetail(a);
    if (v && v.type === 'vault_release') return 'release the secret ' + plain(v.item) + (v.version != null ? ' (version ' + v.version + ')' : '') + ' to ' + plain(a.client_name);
    if (v) return 'share your vault secrets with the new key of ' + plain(v.device_name || v.device_id || 'a device');
    const lead = (Array.isArray(a.authorization_details) ? a.authorization_details : []).find((d) => d && typeof d === 'object' && d.amount != null);
    if (lead) {
      const m = money(lead.amount, lead.currency), to = payee(lead);
      return 'pay ' + (m.text || plain(m.show)) + (to != null ? ' to ' + plain(typeof to === 'string' ? to : JSON.stringify(to)) : '');
    }
    const text = plain(a.binding_message || 'this request').replace(/\s+/g, ' ');
    const short = text.length > 80 ? text.slice(0, 79) + '…' : text;
    return a.kind === 'device_login' ? 'sign in a device: ' + short : short;
  }
  // docs/policies.md §3, as assent device watch prints it: "1 of 2 approved (alice), waiting for bob".
  function quorumLine(q) {
    if (!q || typeof q !== 'object') return '';
    const [yes, wait, no] = [q.approved, q.waiting, q.denied].map((x) => (Array.isArray(x) ? x : []));
    return yes.length + ' of ' + q.required + ' approved' + (yes.length ? ' (' + yes.join(', ') + ')' : '')
      + (wait.length ? ', waiting for ' + wait.join(', ') : '') + (no.length ? ', denied by ' + no.join(', ') : '');
  }
  // A quorum request this user has decided: no buttons, where it stands, until it settles.
  function decided(li, decision) {
    li.classList.add('decided');
    li.querySelector('.quorum').replaceChildren(...shown(quorumLine(li.request.quorum)));
    say(li, decision === 'approve' ? '✓ You approved. It needs more approvals.' : '✕ You denied. It may still be approved by the others.');
    counts();
  }

  function card(a) {
    // Named with what they do (WCAG 2.5.3: the name starts with the visible word), so a list of buttons reads alone.
    const what = action(a);
    const approve = el('button', { type: 'button', class: 'approve', 'data-act': 'approve', text: 'Approve', 'aria-label': 'Approve: ' + what });
    const deny = el('button', { type: 'button', class: 'deny', 'data-act': 'deny', text: 'Deny', 'aria-label': 'Deny: ' + what });
    // Who asks, and when, is the first line: the agent's name (with its owner), then "12 s ago".
    const li = el('li', { 'data-id': a.id }, el('div', { class: 'head' }, asker(a), el('span', { class: 'ago small', title: when(a.created_at) })), foreign(a));
    const details = Array.isArray(a.authorization_details) ? a.authorization_details.filter((d) => d && typeof d === 'object') : [];
    // What is paid and to whom come first, above the agent's message (its own words, which it could make long).
    const lead = details.find((d) => d.amount != null);
    if (lead) {
      li.append(el('p', { class: 'amount', ...money(lead.amount, lead.currency) }));
      if (payee(lead) != null) li.append(el('p', { class: 'payee', show: 'to ' + (typeof payee(lead) === 'string' ? payee(lead) : JSON.stringify(payee(lead))) }));
    }
    const v = vaultDetail(a);
    if (v) li.append(el('p', { class: 'payee', text: action(a).replace(/^./, (c) => c.toUpperCase()) + '.' }));
    const message = el('p', { class: 'message', show: a.binding_message || '(no message)' });
    const more = el('button', { type: 'button', class: 'more', hidden: '', 'aria-expanded': 'false', text: 'More' });
    more.addEventListener('click', () => {
      const open = message.classList.toggle('open');
      more.setAttribute('aria-expanded', String(open));
      more.textContent = open ? 'Less' : 'More';
    });
    li.append(message, more);
    // The technical rest (the lifted payment's other fields, permissions, the request's id) behind "Details".
    const tech = el('dl');
    row(tech, 'Permissions', scopes(a.scope));
    row(tech, 'Request', a.id);
    const more2 = el('details', { class: 'tech' }, el('summary', { text: 'Details' }));
    if (lead) more2.append(detailBlock(lead, a.resource, true));
    // A vault request's line above says it all; its ids and keys are technical.
    if (v) more2.append(detailBlock(v, a.resource));
    more2.append(tech);
    for (const d of details) if (d !== lead && d !== v) li.append(detailBlock(d, a.resource));
    if (!details.length && a.resource) li.append(detailBlock({}, a.resource));
    li.append(el('p', { class: 'quorum', show: quorumLine(a.quorum) }));
    li.append(el('p', { class: 'expiry small', title: when(a.expires_at) }), more2);
    li.append(el('p', { class: 'feedback', role: 'status' }), el('p', { class: 'problem', role: 'alert' }));
    li.append(el('div', { class: 'actions' }, approve, deny));
    li.request = a;
    approve.addEventListener('click', () => decide(a, 'approve', [approve, deny]));
    deny.addEventListener('click', () => decide(a, 'deny', [approve, deny]));
    return li;
  }
  const mine = (a, list) => !!(S.session && a.quorum && Array.isArray(a.quorum[list]) && a.quorum[list].includes(S.session.handle));

  // Ids are stable and a request's content never changes, so a card already shown is kept as it is (it may be
  // in the middle of a decision), but for a quorum's progress; the stream announces a request again after every reconnect.
  // Newest first: a request that arrives goes to the top, where the eye (and "the request below") is, and a
  // screen reader hears of it in the arrivals live region (WAI-ARIA 1.2, role status).
  function upsertCard(a) {
    const shownAlready = S.pending.get(a.id);
    if (shownAlready) {
      // docs/policies.md §3: the stream announces a quorum again after each vote that leaves it open (and a reconnect reads it afresh).
      if (a.quorum) { shownAlready.request.quorum = a.quorum; shownAlready.querySelector('.quorum').replaceChildren(...shown(quorumLine(a.quorum))); }
      return;
    }
    const li = card(a);
    // created_at has whole seconds: within one, the later arrival is the newer.
    const older = [...$('pending').children].find((x) => x.request.created_at <= a.created_at);
    $('pending').insertBefore(li, older || null);
    S.pending.set(a.id, li);
    if (mine(a, 'approved')) decided(li, 'approve'); else if (mine(a, 'denied')) decided(li, 'deny');
    if (S.loaded) $('arrivals').textContent = 'New request from ' + plain(a.client_name) + ': ' + action(a) + '.';
    fit(li);
    tick();
  }

  // A number never breaks: an amount too wide for the card is set smaller until it fits (320 px screens), and
  // "More" shows only when the clamped message hides lines. Both measure, so they run when the card is on screen.
  function fit(li) {
    for (const p of li.querySelectorAll('.amount')) {
      p.style.removeProperty('font-size');
      let size = parseFloat(getComputedStyle(p).fontSize);
      while (p.scrollWidth > p.clientWidth && size > 14) { size -= 1; p.style.setProperty('font-size', size + 'px'); }
    }
    const message = li.querySelector('.message'), more = li.querySelector('.more');
    if (!message.classList.contains('open')) more.hidden = message.scrollHeight <= message.clientHeight + 1;
  }
  addEventListener('resize', () => { for (const li of S.pending.values()) fit(li); });
  // A card that goes while focus was on it (or its buttons, now gone) hands focus to the next card's heading,
  // or to the empty list's words, never to the page's body.
  function removeCard(id) {
    const li = S.pending.get(id);
    if (!li) { counts(); return; }
    const lost = li.contains(document.activeElement) || (document.activeElement === document.body && li.classList.contains('done'));
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove(); S.pending.delete(id);
    counts();
    if (lost && !$('t-pending').hidden && !$('v-main').hidden) (next ? next.querySelector('h2') : $('empty')).focus();
  }
  function counts() {
    const live = [...S.pending.values()].filter((li) => !li.classList.contains('expired') && !li.classList.contains('decided')).length;
    // A badge beside the tab's name, read as "Pending 2 waiting".
    $('count').querySelector('.badge').textContent = live || '';
    $('count').hidden = !live;
    $('empty').hidden = S.pending.size > 0;
    // Until the server's list has arrived, an empty list is not "nothing waiting" (docs/http-api.md §12.1).
    $('loading').hidden = S.loaded;
    $('none').hidden = !S.loaded;
    // The count where a glance finds it: the tab's title and, for the installed app, its icon (Badging API).
    document.title = live ? '(' + live + ') Assent' : 'Assent';
    if (navigator.setAppBadge) (live ? navigator.setAppBadge(live) : navigator.clearAppBadge()).catch(() => {});
  }

  // The local clock greys a card out at its expires_at, whether or not the server's news arrives (a dropped
  // stream, a sleeping phone), and counts the time left down.
  const expired = (a) => Date.now() >= a.expires_at * 1000;
  const ago = (unix) => {
    const s = Math.floor(Date.now() / 1000 - unix);
    return s < 5 ? 'just now' : s < 60 ? s + ' s ago' : s < 3600 ? Math.floor(s / 60) + ' min ago' : Math.floor(s / 3600) + ' h ago';
  };
  function tick() {
    for (const li of S.pending.values()) {
      const a = li.request;
      li.querySelector('.ago').textContent = ago(a.created_at);
      const left = Math.ceil(a.expires_at - Date.now() / 1000);
      if (left > 0) {
        li.querySelector('.expiry').textContent = 'Expires in ' + Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0');
      } else if (!li.classList.contains('expired')) {
        li.classList.add('expired');
        li.querySelector('.expiry').textContent = 'Expired: the agent has to ask again.';
        for (const b of li.querySelectorAll('.actions button')) b.disabled = true;
      }
    }
    counts();
    clearTimeout(S.ticker);
    if (S.pending.size) S.ticker = setTimeout(tick, 1000 - (Date.now() % 1000));
  }

  // On every (re)connect the server's pending list replaces the page's: a card the server no longer lists (decided
  // or expired while the stream was down) goes. The stream subscribes before it answers, so whatever it announces
  // or settles after opening is newer than this read and wins over it.
  async function resync(es) {
    let list;
    try { list = (await api('GET', '/webauthn/approvals')).approvals; } catch { return; }
    if (S.stream !== es) return;
    const current = new Set(list.map((a) => a.id));
    for (const id of [...S.pending.keys()]) if (!current.has(id) && !S.seen.has(id)) removeCard(id);
    for (const a of list) if (!S.seen.has(a.id)) upsertCard(a);
    S.loaded = true;
    counts();
  }

  function openStream() {
    if (S.stream) S.stream.close();
    const es = new EventSource('/webauthn/stream');
    S.stream = es;
    S.seen = new Set();
    const down = (yes) => { $('conn').hidden = !yes; };
    es.addEventListener('open', () => { down(false); S.seen = new Set(); resync(es); resendAll(); });
    es.addEventListener('approval', (e) => { const a = JSON.parse(e.data); S.seen.add(a.id); upsertCard(a); });
    es.addEventListener('settled', (e) => {
      const id = JSON.parse(e.data).id, li = S.pending.get(id);
      S.seen.add(id);
      // A card being answered here says how it ended itself.
      if (li && (li.classList.contains('busy') || li.classList.contains('done'))) li.settled = true; else removeCard(id);
      loadHistory();
    });
    es.addEventListener('error', async () => {
      if (S.stream !== es) return;
      down(true);
      // EventSource reconnects by itself after a network error; after a refusal (401, 503) it gives up, so ask again
      // later, unless the session is gone.
      if (es.readyState === EventSource.CLOSED) {
        try { await api('GET', '/webauthn/session'); } catch (e) { if (e.status === 401) { start(); return; } }
        setTimeout(() => { if (S.stream === es) openStream(); }, 2000);
      }
    });
  }

  // ---- history and devices -------------------------------------------------------
  async function loadHistory() {
    try {
      const h = await api('GET', '/webauthn/history');
      $('history').replaceChildren(...h.approvals.map((a) => el('li', {},
        el('span', { class: 'grow', show: a.binding_message || a.scope }),
        el('span', { class: 'state-' + a.state, text: a.state }),
        el('span', { class: 'small', show: a.client_name + (a.client_owner ? ' by ' + a.client_owner : '') + ' · ' + when(a.decided_at || a.created_at) }))));
    } catch (e) { failed(e); }
  }

  // An in-page confirmation for what cannot be undone (revoking): it opens in the row, says what follows, and takes
  // focus; Cancel puts things back. No confirm(): the browser's dialog cannot be styled, read with the row, or tested.
  function confirmIn(li, question, yes, act) {
    if (li.querySelector('.confirm')) return;
    const box = el('div', { class: 'confirm', role: 'group', 'aria-label': plain(question) });
    const close = () => { box.remove(); for (const b of li.querySelectorAll('button')) b.hidden = false; };
    const go = el('button', { type: 'button', class: 'danger', 'data-act': 'confirm', text: yes });
    const cancel = el('button', { type: 'button', 'data-act': 'cancel', text: 'Cancel', onclick: () => { const back = li.querySelector('.deny'); close(); if (back) back.focus(); } });
    go.addEventListener('click', async () => { go.disabled = true; cancel.disabled = true; await act(); if (box.isConnected) close(); });
    for (const b of li.querySelectorAll('button')) b.hidden = true;
    box.append(el('p', { show: question }), el('div', { class: 'actions' }, go, cancel));
    li.append(box);
    cancel.focus();
  }

  // An in-page name field (renaming a device, naming a new passkey): it opens where it is used and takes focus; Enter
  // saves, Escape or Cancel puts things back. No prompt(), for the reasons confirmIn gives. The server's limit is 64.
  function nameIn(put, hide, label, initial, saveText, act) {
    const input = el('input', { type: 'text', maxlength: '64', required: '', autocomplete: 'off', spellcheck: 'false' });
    input.value = initial;
    const go = el('button', { type: 'submit', 'data-act': 'save', text: saveText });
    const cancel = el('button', { type: 'button', 'data-act': 'cancel', text: 'Cancel' });
    const form = el('form', { class: 'confirm name-form' }, el('label', {}, el('span', { text: label }), input), el('div', { class: 'actions' }, go, cancel));
    const close = () => { form.remove(); for (const b of hide) b.hidden = false; if (hide[0] && hide[0].isConnected) hide[0].focus(); };
    cancel.addEventListener('click', close);
    form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      if (!name) { input.focus(); return; }
      go.disabled = true; cancel.disabled = true;
      await act(name);
      if (form.isConnected) close();
    });
    for (const b of hide) b.hidden = true;
    put(form);
    input.focus();
    input.select();
  }

  // Agents of other users this user allows to ask them (their own agents always may).
  async function loadConsents() {
    try {
      const c = await api('GET', '/webauthn/consents');
      const active = c.consents.filter((x) => x.active);
      $('consents').replaceChildren(...active.map((x) => {
        const who = x.agent_name + ' (' + x.client_id + ')' + (x.owner ? ' by ' + x.owner : '');
        return el('li', { 'data-id': x.client_id },
          el('span', { class: 'grow', show: who }),
          el('span', { class: 'small', text: 'since ' + when(x.created_at) }),
          el('button', { type: 'button', class: 'deny', text: 'Revoke', onclick: (ev) => confirmIn(ev.target.closest('li'),
            'Stop allowing ' + who + ' to ask you for approvals?', 'Stop allowing', async () => {
              try { await api('DELETE', '/webauthn/consents/' + encodeURIComponent(x.client_id)); status('Revoked: ' + plain(who) + ' can no longer ask you.'); loadConsents(); } catch (e) { failed(e); }
            }) }));
      }));
      $('no-consents').hidden = active.length > 0;
    } catch (e) { failed(e); }
  }

  // Spending mandates (docs/policies.md §6), under Access: limits, what this period spent and has left, and revoke.
  const PERIODS = { day: 'a day', week: 'a week', month: 'a month', none: 'in all' };
  const amountText = (a, c) => { const m = money(a, c); return m.text || m.show; };
  async function loadMandates() {
    try {
      const m = await api('GET', '/webauthn/mandates');
      $('mandates').replaceChildren(...m.mandates.map((x) => {
        const li = el('li', { 'data-id': x.id },
          el('span', { class: 'grow', show: x.client_id + ': up to ' + amountText(x.per_payment, x.currency) + ' a payment, ' +
            amountText(x.total, x.currency) + ' ' + (PERIODS[x.period] || x.period) }),
          el('span', { class: 'small', text: x.status + ' · spent ' + amountText(x.spent, x.currency) + ', ' + amountText(x.remaining, x.currency) + ' left · ' +
            x.payment_count + (x.payment_count === 1 ? ' payment' : ' payments') + ' · until ' + new Date(x.expires_at).toLocaleString() }));
        if (x.payment_count > 0) {
          li.append(el('button', { type: 'button', 'data-act': 'payments', 'aria-expanded': 'false', text: 'Payments', onclick: (ev) => toggleMandatePayments(li, x, ev.currentTarget) }));
        }
        if (x.status === 'active' || x.status === 'pending') {
          li.append(el('button', { type: 'button', class: 'deny', text: 'Revoke', onclick: () => confirmIn(li,
            'Revoke this spending limit? Payments it would have covered will ask you again.', 'Revoke', async () => {
              try { await api('POST', '/webauthn/mandates/' + encodeURIComponent(x.id) + '/revoke'); status('Revoked: payments will ask you again.'); loadMandates(); } catch (e) { failed(e); }
            }) }));
        }
        return li;
      }));
      $('no-mandates').hidden = m.mandates.length > 0;
    } catch (e) { failed(e); }
  }

  // A mandate's payments, newest first (GET /webauthn/mandates/{id}): when, how much, to whom, and what its period had left after it.
  async function toggleMandatePayments(li, x, button) {
    const open = li.querySelector('.mandate-payments');
    if (open) { open.remove(); button.setAttribute('aria-expanded', 'false'); return; }
    try {
      const d = await api('GET', '/webauthn/mandates/' + encodeURIComponent(x.id));
      li.append(el('ul', { class: 'mandate-payments small' }, ...(d.payments || []).map((p) => el('li', { 'data-id': p.approval_id },
        el('span', { text: new Date(p.created_at).toLocaleString() + ' · ' + amountText(p.amount, x.currency) }),
        p.payee ? el('span', { show: 'to ' + p.payee }) : null,
        el('span', { text: amountText(p.remaining, x.currency) + ' left' })))));
      button.setAttribute('aria-expanded', 'true');
    } catch (e) { failed(e); }
  }

  async function loadDevices() {
    try {
      const d = await api('GET', '/webauthn/devices');
      $('devices').replaceChildren(...d.devices.map((dev) => {
        const li = el('li', { 'data-id': dev.id },
          el('span', { class: 'grow', show: dev.name }),
          el('span', { class: 'small', text: (dev.kind === 'webauthn' ? 'passkey' : 'key') + (dev.active ? '' : ' · revoked') + (S.session && dev.id === S.session.device_id ? ' · this session' : '') }));
        if (dev.active) {
          li.append(el('button', { type: 'button', text: 'Rename', onclick: () => nameIn((f) => li.append(f), [...li.querySelectorAll('button')],
            'New name for ' + plain(dev.name), plain(dev.name), 'Rename', async (name) => {
              try { await api('PATCH', '/webauthn/devices/' + encodeURIComponent(dev.id), { name }); status('Renamed to ' + plain(name) + '.'); loadDevices(); } catch (e) { failed(e); }
            }) }));
          const current = S.session && dev.id === S.session.device_id;
          li.append(el('button', { type: 'button', class: 'deny', text: 'Revoke', onclick: () => confirmIn(li, current
            ? 'Revoke ' + dev.name + ', the passkey you are signed in with? You will be signed out here, and it will not be able to approve anything.'
            : 'Revoke ' + dev.name + '? It will not be able to approve anything.', 'Revoke', async () => {
            try { await api('DELETE', '/webauthn/devices/' + encodeURIComponent(dev.id)); status('Revoked ' + plain(dev.name) + '.'); start(); } catch (e) { failed(e); }
          }) }));
        }
        return li;
      }));
    } catch (e) { failed(e); }
  }

  // The tabs of the main view: each has a button (data-tab) and a panel (t-NAME) in app.html, and here what it
  // loads when chosen. A new tab is one entry here and its two elements there.
  const TABS = {
    pending: () => { for (const li of S.pending.values()) fit(li); },
    history: () => loadHistory(),
    devices: () => { loadDevices(); loadPush(); },
    consents: () => { loadConsents(); loadMandates(); loadApps(); },
    vault: () => vault().then((v) => v.load()).catch((e) => failed(e)),
  };
  function tab(name) {
    for (const b of document.querySelectorAll('.tabs button')) {
      if (b.dataset.tab === name) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
    }
    for (const t of Object.keys(TABS)) $('t-' + t).hidden = t !== name;
    status('');
    TABS[name]();
  }

  // ---- the vault (docs/vault.md §7): vault.js is fetched the first time it is needed (the Vault tab, or approving a vault
  // request), so the first load stays within its budget. It gets this file's helpers and answers with its functions. ----
  let vaultScript = null;
  const vault = () => vaultScript || (vaultScript = new Promise((resolve, reject) => {
    const s = el('script', { src: '/app/vault.js' });
    s.addEventListener('load', () => resolve(window.AssentVault.attach({ api, el, status, failed, assertion, confirmIn, session: () => S.session })));
    s.addEventListener('error', () => { vaultScript = null; s.remove(); reject(new TypeError('vault.js did not load')); });
    document.head.append(s);
  }));
  const VAULT_TYPES = ['vault_release', 'vault_rewrap'];
  const vaultDetail = (a) => (Array.isArray(a.authorization_details) ? a.authorization_details : [])
    .find((d) => d && typeof d === 'object' && VAULT_TYPES.includes(d.type)) || null;

  // ---- Websites (docs/http-api.md §17.8), under Access: web applications the user let sign them in with Assent, each
  // revocable; an administrator also registers them here (as assent admin client create). ----
  $('app-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const words = (id) => $(id).value.split(/\s+/).filter(Boolean);
    try {
      const c = await api('POST', '/webauthn/web-clients', { name: $('app-name').value.trim(), redirect_uris: words('app-redirects'),
        post_logout_redirect_uris: words('app-logouts'), public: $('app-public').checked, id_token_alg: $('app-alg').value });
      $('app-created').textContent = 'Registered ' + c.name + '. Client id: ' + c.client_id +
        (c.client_secret ? '. Secret, shown this once only: ' + c.client_secret : ' (public: no secret).');
      ev.target.reset();
      loadApps();
    } catch (e) { failed(e); }
  });
  async function loadApps() {
    try {
      const a = await api('GET', '/webauthn/applications');
      $('apps').replaceChildren(...a.applications.map((x) => {
        const li = el('li', { 'data-id': x.client_id },
          el('span', { class: 'grow', show: x.name }),
          el('span', { class: 'small', text: x.scope + ' · since ' + when(x.consented_at) }));
        li.append(el('button', { type: 'button', class: 'deny', text: 'Revoke', onclick: () => confirmIn(li,
          'Stop ' + x.name + ' signing you in with Assent? It asks you again next time.', 'Revoke', async () => {
            try { await api('DELETE', '/webauthn/applications/' + encodeURIComponent(x.client_id)); status('Revoked: ' + plain(x.name) + ' will ask you again.'); loadApps(); } catch (e) { failed(e); }
          }) }));
        return li;
      }));
      $('no-apps').hidden = a.applications.length > 0;
    } catch (e) { failed(e); }
    try {
      const c = await api('GET', '/webauthn/web-clients');
      $('app-clients').replaceChildren(...c.clients.map((x) => el('li', {}, el('span', { class: 'grow', show: x.name }),
        el('span', { class: 'small', text: x.client_id + ' · ' + (x.public ? 'public' : 'confidential') + ' · ' + x.id_token_alg }))));
      $('app-admin').hidden = false;
    } catch { $('app-admin').hidden = true; }
  }

  // ---- Web Push: the notification switch, and opening a pushed request (docs/http-api.md §12.6) ----
  // On: the browser subscribes its push service with the server's VAPID key (RFC 8292 §3.2) and the server keeps the
  // subscription for this session's passkey; each new request then reaches this device as a notification, even when
  // the app is closed. Off: both sides forget it. The notification opens /app#/requests/{id} (sw.js).
  const PUSH = { key: null, want: null };
  const pushNote = (text) => { $('push-note').textContent = text; };
  const pushable = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  const pushWorker = () => navigator.serviceWorker.register('/app/sw.js', { scope: '/app' }).then(() => navigator.serviceWorker.ready);

  async function loadPush() {
    const box = $('push'), sw = $('push-switch');
    box.hidden = false;
    if (!pushable()) { sw.disabled = true; pushNote('This browser cannot show notifications from Assent.'); return; }
    try {
      PUSH.key = (await api('GET', '/webauthn/push')).application_server_key;
      const sub = await (await pushWorker()).pushManager.getSubscription();
      sw.checked = !!sub && Notification.permission === 'granted';
      // Sent again on every visit: the server keeps it for the passkey signed in now, with the browser's current keys.
      if (sw.checked) await api('POST', '/webauthn/push/subscriptions', sub.toJSON());
      pushNote(sw.checked ? 'On: new requests show as notifications on this device, even when Assent is closed.'
        : Notification.permission === 'denied' ? 'Notifications are blocked for this site in the browser settings.' : 'Off.');
    } catch (e) { pushNote(human(e)); }
  }

  async function setPush(on) {
    const sw = $('push-switch');
    sw.disabled = true;
    try {
      const reg = await pushWorker();
      let sub = await reg.pushManager.getSubscription();
      if (on) {
        if (await Notification.requestPermission() !== 'granted') {
          sw.checked = false;
          pushNote('Notifications are blocked for this site: allow them in the browser settings, then turn this on again.');
          return;
        }
        // A subscription made with another key cannot carry this server's pushes (RFC 8292 §4): start over.
        if (sub && sub.options.applicationServerKey && b64e(sub.options.applicationServerKey) !== PUSH.key) { await sub.unsubscribe(); sub = null; }
        sub = sub || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64d(PUSH.key) });
        await api('POST', '/webauthn/push/subscriptions', sub.toJSON());
        pushNote('On: new requests show as notifications on this device, even when Assent is closed.');
      } else {
        if (sub) {
          try { await api('POST', '/webauthn/push/unsubscribe', { endpoint: sub.endpoint }); } catch (e) { if (e.status !== 404) throw e; }
          await sub.unsubscribe();
        }
        pushNote('Off.');
      }
    } catch (e) {
      sw.checked = !on;
      pushNote(e instanceof DOMException ? 'This browser could not subscribe to its push service (a private window cannot, and it needs the network), so notifications stay off.' : human(e));
    } finally { sw.disabled = false; }
  }

  // /app#/requests/{id}: the request a notification named. Still pending: its card, brought into view; otherwise say so.
  async function openPushed() {
    const m = /^#\/requests\/([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
    if (!m || !S.session) return;
    history.replaceState(null, '', location.pathname + location.search);
    tab('pending');
    try {
      const a = await api('GET', '/webauthn/approvals/' + encodeURIComponent(m[1]));
      if (a.state && a.state !== 'pending') { status('That request was already answered, or it expired.'); return; }
      upsertCard(a);
      const li = S.pending.get(a.id);
      li.classList.add('pushed');
      li.scrollIntoView({ block: 'center' });
      li.querySelector('.approve').focus({ preventScroll: true });
    } catch (e) { failed(e); }
  }
  addEventListener('hashchange', openPushed);
  // The service worker's word when a notification is tapped while the app is open (sw.js).
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.addEventListener('message', (e) => {
      if (e.data && e.data.type === 'assent:open' && typeof e.data.url === 'string') location.hash = new URL(e.data.url, location.origin).hash;
    });
    navigator.serviceWorker.startMessages();
  }

  // ---- views ---------------------------------------------------------------------
  function signedIn() {
    $('who').textContent = S.session ? S.session.handle : '';
    $('signout').hidden = !S.session;
  }

  // Enrolment for the device it is opened on (docs/http-api.md §12.1). A phone (a touch screen is its main pointer)
  // is the approver: one sentence on what a passkey is and one button, the invite code already filled in from the
  // link. A computer shows the QR first, for the phone that will approve, and creating the passkey here second. The
  // CLI command waits behind a disclosure on both.
  const PLATFORM = (() => {
    const ua = navigator.userAgent;
    const phone = matchMedia('(pointer: coarse)').matches || !!(navigator.userAgentData && navigator.userAgentData.mobile);
    const apple = /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
    return { phone, unlock: apple ? 'Face ID' : /Android/.test(ua) ? 'your fingerprint or screen lock' : 'your fingerprint, face or PIN', name: apple ? 'iPhone' : /Android/.test(ua) ? 'Android phone' : 'phone' };
  })();
  function enrollView(code) {
    const phone = PLATFORM.phone;
    $('v-enroll').classList.toggle('phone', phone);
    $('cli-enroll').textContent = 'assent device enroll --server ' + location.origin + ' --code ' + (code || 'CODE');
    $('passkey-what').textContent = 'A passkey lets you approve your agents\u2019 requests with ' + PLATFORM.unlock + ': it stays on this '
      + (phone ? 'phone' : 'device') + ', works only for Assent, and there is no password to type or steal.';
    $('code').value = code || '';
    // The code came with the link: nothing to type on a phone (the passkey's name defaults to the kind of phone).
    $('enroll-fields').hidden = phone && !!code;
    if (phone && !$('dev-name').value) $('dev-name').value = PLATFORM.name;
    $('enroll-go').textContent = phone ? (PLATFORM.unlock === 'Face ID' ? 'Continue with Face ID' : 'Continue with passkey') : 'Create passkey on this computer';
    $('enroll-here').hidden = phone || !code;
    if (code && !phone) $('qr-img').src = '/app/enroll/qr.svg?code=' + encodeURIComponent(code);
    $('qr').hidden = phone || !code;
    show('enroll');
  }

  function showMain() {
    show('main');
    S.loaded = false;
    counts();
    openStream();
    loadHistory();
    openPushed();
  }

  async function start() {
    const path = location.pathname.replace(/\/+$/, '');
    const params = new URLSearchParams(location.search);
    let offline = null;
    try { S.session = await api('GET', '/webauthn/session'); } catch (e) { S.session = null; if (e.status === undefined) offline = e; }
    signedIn();
    if (offline && path !== '/app/enroll') { show('signin'); failed(offline); return; }
    if (path === '/app/enroll') {
      enrollView(params.get('code'));
      return;
    }
    if (!S.session) { show('signin'); return; }
    if (path === '/device') {
      if (params.get('user_code')) $('user-code').value = params.get('user_code');
      show('device');
      return;
    }
    showMain();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin').addEventListener('click', async (ev) => {
      ev.target.disabled = true;
      status('Confirm with your passkey…');
      try { await signIn(); status(''); await start(); } catch (e) { failed(e, 'signin'); } finally { ev.target.disabled = false; }
    });
    $('signout').addEventListener('click', async () => {
      try { await api('POST', '/webauthn/signout', {}); } catch (e) { failed(e); }
      if (S.stream) S.stream.close();
      S.stream = null; $('conn').hidden = true;
      S.session = null; S.loaded = false; S.pending.forEach((li) => li.remove()); S.pending.clear(); counts();
      signedIn(); show('signin');
    });
    $('enroll-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = ev.target.querySelector('button'); button.disabled = true;
      status('Creating your passkey…');
      try {
        const r = await createPasskey($('code').value.trim(), $('dev-name').value.trim());
        history.replaceState(null, '', '/app');
        await start();
        status('Passkey registered for ' + r.handle + '.');
      } catch (e) { failed(e, 'enroll'); } finally { button.disabled = false; }
    });
    $('device-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const a = await api('POST', '/webauthn/device-login', { user_code: $('user-code').value.trim() });
        history.replaceState(null, '', '/app');
        showMain();
        status('Approve the sign-in request below with your passkey.');
        // The request just raised (its view is the answer, docs/http-api.md §12.5): shown at once, in view, and focused.
        if (a && a.id) {
          upsertCard(a);
          const li = S.pending.get(a.id);
          li.scrollIntoView({ block: 'nearest' });
          li.querySelector('h2').focus({ preventScroll: true });
        }
      } catch (e) { failed(e, 'device'); }
    });
    $('add-passkey').addEventListener('click', () => {
      const add = $('add-passkey');
      nameIn((f) => add.after(f), [add], 'Name for the new passkey', 'passkey', 'Create passkey', async (name) => {
        status('Creating another passkey…');
        try { await createPasskey(null, name); status('Passkey added.'); S.session = await api('GET', '/webauthn/session'); loadDevices(); } catch (e) { failed(e); }
      });
    });
    for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => tab(b.dataset.tab));
    $('push-switch').addEventListener('change', (ev) => setPush(ev.target.checked));
    start();
    // After the page is up, so the first load stays what it was; the worker keeps the shell for later starts.
    if ('serviceWorker' in navigator) addEventListener('load', () => navigator.serviceWorker.register('/app/sw.js', { scope: '/app' }).catch(() => {}));
  });
})();
