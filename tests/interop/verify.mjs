// Verifies an access token with jose alone, as any relying party would.
//
//   node verify.mjs TOKEN JWKS_URI ISSUER AUDIENCE
//
// Prints "VERIFIED <claims JSON>" and exits 0, or "REJECTED <jose error code>" and exits 1.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [token, jwksUri, issuer, audience] = process.argv.slice(2);
if (!audience) {
  console.error('usage: node verify.mjs TOKEN JWKS_URI ISSUER AUDIENCE');
  process.exit(64);
}

try {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  const { payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA'] });
  process.stdout.write(`VERIFIED ${JSON.stringify(payload)}\n`);
} catch (error) {
  process.stdout.write(`REJECTED ${error?.code ?? error?.name ?? 'error'}\n`);
  console.error(error?.message ?? String(error));
  process.exitCode = 1;
}
