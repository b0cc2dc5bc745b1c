// An OpenID Connect relying party built only from third-party libraries (openid-client, jose): the
// authorization code flow with PKCE against a live Assent server, driven in two steps by
// tests/Assent.Web.Tests/SignInTests.cs, whose browser does the part in between.
//
//   node oidc.mjs start  ISSUER CLIENT_ID SECRET|- REDIRECT_URI ALG
//     stdout: {"url","code_verifier","state","nonce"}  (the authorization URL to open in the browser)
//   node oidc.mjs finish ISSUER CLIENT_ID SECRET|- REDIRECT_URI ALG CALLBACK_URL CODE_VERIFIER STATE NONCE
//     stdout: {"scope","token_type","refresh_token","id_token_claims","id_token_header","verified"}, exit 0
//   node oidc.mjs refresh ISSUER CLIENT_ID SECRET|- REDIRECT_URI ALG REFRESH_TOKEN
//     stdout: the same as finish, from openid-client's refreshTokenGrant
//
// OIDC_SCOPE in the environment replaces the scope the start step asks for ('openid profile').
//
// SECRET "-" is a public client (token_endpoint_auth_method none). ALG is the client's
// id_token_signed_response_alg; jose then verifies the ID token from the JWKS with that algorithm only.
// A refusal by the server prints {"error","error_description"} and exits 3; any other failure exits 1.
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const [step, issuer, clientId, secret, redirectUri, alg, callbackUrl, verifier, state, nonce] = process.argv.slice(2);
if (!alg || (step === 'finish' && !nonce) || (step === 'refresh' && !callbackUrl) || !['start', 'finish', 'refresh'].includes(step)) {
  console.error('usage: node oidc.mjs start|finish|refresh ISSUER CLIENT_ID SECRET|- REDIRECT_URI ALG [CALLBACK_URL CODE_VERIFIER STATE NONCE | REFRESH_TOKEN]');
  process.exit(64);
}

try {
  const isPublic = secret === '-';
  const metadata = { client_id: clientId, redirect_uris: [redirectUri], id_token_signed_response_alg: alg };
  if (!isPublic) metadata.client_secret = secret;
  // The test server is plain http on localhost; openid-client refuses http unless told.
  const config = await client.discovery(new URL(issuer), clientId, metadata,
    isPublic ? client.None() : client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });

  if (step === 'start') {
    const codeVerifier = client.randomPKCECodeVerifier();
    const s = client.randomState();
    const n = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: process.env.OIDC_SCOPE || 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: s,
      nonce: n,
    });
    process.stdout.write(JSON.stringify({ url: url.href, code_verifier: codeVerifier, state: s, nonce: n }) + '\n');
  } else {
    // Checks state, iss (RFC 9207), the ID token's signature, iss, aud, nonce, exp; a refresh checks the ID token's
    // signature, iss, aud, exp (OpenID Connect Core §12.2).
    const tokens = step === 'refresh'
      ? await client.refreshTokenGrant(config, callbackUrl)
      : await client.authorizationCodeGrant(config, new URL(callbackUrl), {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
    const { payload } = await jwtVerify(tokens.id_token, jwks, { issuer, audience: clientId, algorithms: [alg] });
    process.stdout.write(JSON.stringify({
      scope: tokens.scope,
      token_type: tokens.token_type,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token ?? null,
      id_token: tokens.id_token,
      id_token_claims: tokens.claims(),
      id_token_header: decodeProtectedHeader(tokens.id_token),
      verified: payload,
    }) + '\n');
  }
} catch (error) {
  if (error?.error) {
    process.stdout.write(JSON.stringify({ error: error.error, error_description: error.error_description ?? null }) + '\n');
    process.exitCode = 3;
  } else {
    console.error(`${error?.name ?? 'Error'}: ${error?.message ?? error}${error?.code ? ` (${error.code})` : ''}`);
    if (error?.cause) console.error('cause:', error.cause);
    process.exitCode = 1;
  }
}
