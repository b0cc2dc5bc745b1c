// A CIBA poll-mode client built only from third-party libraries (openid-client, jose), run
// against a live Assent server by tests/Assent.Server.Tests/InteropTests.cs.
//
//   node ciba.mjs ISSUER CLIENT_ID CLIENT_SECRET LOGIN_HINT
//
// stdout, one line each: "PENDING <auth_req_id>", then the token response as one JSON object,
// then "VERIFIED <access token claims JSON>" (exit 0). A denial prints "DENIED <description>"
// and exits 3; any other failure goes to stderr and exits 1.
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, clientId, clientSecret, loginHint] = process.argv.slice(2);
if (!loginHint) {
  console.error('usage: node ciba.mjs ISSUER CLIENT_ID CLIENT_SECRET LOGIN_HINT');
  process.exit(64);
}

try {
  // The test server is plain http on localhost; openid-client refuses http unless told.
  const config = await client.discovery(new URL(issuer), clientId, clientSecret,
    client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });

  const response = await client.initiateBackchannelAuthentication(config, {
    scope: 'openid approve:action',
    login_hint: loginHint,
    binding_message: 'Interop test',
  });
  process.stdout.write(`PENDING ${response.auth_req_id}\n`);

  const tokens = await client.pollBackchannelAuthenticationGrant(config, response);
  process.stdout.write(JSON.stringify({
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    scope: tokens.scope,
    id_token_claims: tokens.claims() ?? null,
  }) + '\n');

  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  const { payload } = await jwtVerify(tokens.access_token, jwks, {
    issuer,
    audience: clientId,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
  });
  process.stdout.write(`VERIFIED ${JSON.stringify(payload)}\n`);
} catch (error) {
  if (error?.error === 'access_denied') {
    process.stdout.write(`DENIED ${error.error_description ?? ''}\n`);
    process.exitCode = 3;
  } else {
    console.error(`${error?.name ?? 'Error'}: ${error?.message ?? error}${error?.code ? ` (${error.code})` : ''}${error?.error ? ` [${error.error}]` : ''}`);
    if (error?.cause) {
      console.error('cause:', error.cause);
    }
    process.exitCode = 1;
  }
}
