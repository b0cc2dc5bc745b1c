// A peer for the signin bench (bench/run.sh signin): node-oidc-provider, the OpenID Connect provider many self-hosted
// deployments run, serving the same authorization code flow with PKCE to the same driver on the same machine, so its
// figures sit beside Assent's in one run. Its sign-in step verifies a P-256 signature over what a WebAuthn authenticator
// signs (authenticator data and the client data's hash, WebAuthn L3 §7.2), the same check a passkey assertion costs, and
// then finishes the interaction as that user. Consent is the one a user gave before (loadExistingGrant grants openid), as
// the Assent side's users consented before. Storage is the provider's in-memory adapter: it writes nothing to disk, which
// Assent does for every session and code. For the mandates bench it also serves the client credentials grant (RFC 6749
// §4.4) to one agent, with a JWT access token signed per request: a token without a human, as a covered payment is.
// Usage: node server.mjs PORT PUBLIC_KEY_JWK_JSON; prints "listening" when ready.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const [port, publicJwk] = [Number(process.argv[2]), JSON.parse(process.argv[3])];
const issuer = `http://127.0.0.1:${port}`;
const passkey = crypto.createPublicKey({ key: publicJwk, format: 'jwk' });
const { privateKey } = crypto.generateKeyPairSync('ed25519');
const signingKey = privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench-wiki',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1:9/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'EdDSA',
  }, {
    client_id: 'bench-agent',
    client_secret: 'bench-agent-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    grant_types: ['client_credentials'],
    response_types: [],
    id_token_signed_response_alg: 'EdDSA',
  }],
  jwks: { keys: [{ ...signingKey, alg: 'EdDSA', use: 'sig', kid: 'bench' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // The agent's tokens are JWTs for one resource (RFC 8707), signed like Assent's; the sign-in's access token stays opaque.
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client.clientId === 'bench-agent' ? 'urn:bench:payments' : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'pay', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } } }),
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

const callback = provider.callback();
const page = (uid, challenge) =>
  `<!doctype html><title>Sign in</title><form method=post action="/interaction/${uid}/login" data-challenge="${challenge}"><button>Sign in</button></form>`;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

http.createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (!match[2]) {
      // The sign-in page: the challenge is the interaction's own id, which the provider keeps for this browser.
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page(details.uid, details.uid));
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const authenticatorData = Buffer.from(form.get('authenticator_data') ?? '', 'base64url');
    const clientData = Buffer.from(form.get('client_data_json') ?? '', 'base64url');
    const signature = Buffer.from(form.get('signature') ?? '', 'base64url');
    const parsed = JSON.parse(clientData.toString('utf8'));
    const signed = Buffer.concat([authenticatorData, crypto.createHash('sha256').update(clientData).digest()]);
    if (parsed.type !== 'webauthn.get' || parsed.challenge !== details.uid ||
        !crypto.verify('sha256', signed, { key: passkey, dsaEncoding: 'der' }, signature)) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('assertion refused');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: form.get('user') ?? 'user' } }, { mergeWithLastSubmission: false });
  } catch (error) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(String(error?.message ?? error));
  }
}).listen(port, '127.0.0.1', () => console.log('listening'));
