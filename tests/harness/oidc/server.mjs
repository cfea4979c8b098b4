// OIDC provider with Keycloak's URL layout (/realms/clpm/...), for the CLPM test harness.
// Realm (roles, clients, users, passwords) is read from the same realm JSON that the docker
// deployment imports into Keycloak (REALM_FILE). Tokens are RS256 JWTs with kid, aud=clpm-api,
// azp, preferred_username and realm_access.roles, as Keycloak issues them.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const PORT = Number(process.env.PORT);
const HOST = process.env.HOST ?? '127.0.0.1';
const realm = JSON.parse(fs.readFileSync(process.env.REALM_FILE, 'utf8'));
const PREFIX = `/realms/${realm.realm}`;
const ISSUER = `http://${HOST}:${PORT}${PREFIX}`;
const AUDIENCE = process.env.AUDIENCE ?? 'clpm-api';
const TTL = Number(process.env.ACCESS_TOKEN_TTL ?? realm.accessTokenLifespan ?? 900);
const KID = process.env.KID ?? 'clpm-test-rsa-1';

const users = Object.fromEntries(realm.users.map((u) => [u.username, {
  password: (u.credentials ?? []).find((c) => c.type === 'password')?.value,
  roles: u.realmRoles ?? [], email: u.email, name: `${u.firstName ?? ''} ${u.lastName ?? ''}`.trim(),
}]));
const clients = realm.clients.filter((c) => !c.bearerOnly).map((c) => ({
  client_id: c.clientId,
  ...(c.publicClient ? { token_endpoint_auth_method: 'none' } : { client_secret: c.secret }),
  grant_types: [
    ...(c.standardFlowEnabled ? ['authorization_code', 'refresh_token'] : []),
    ...(c.directAccessGrantsEnabled ? ['password'] : []),
  ],
  response_types: c.standardFlowEnabled ? ['code'] : [],
  redirect_uris: (c.redirectUris ?? []).map((u) => u.replace(/\*$/, 'callback')),
}));

const RS = { audience: AUDIENCE, scope: 'openid profile email', accessTokenFormat: 'jwt', accessTokenTTL: TTL,
  jwt: { sign: { alg: 'RS256' } } };
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

const provider = new Provider(ISSUER, {
  jwks: { keys: [privateJwk] },
  routes: {
    authorization: '/protocol/openid-connect/auth', token: '/protocol/openid-connect/token',
    jwks: '/protocol/openid-connect/certs', userinfo: '/protocol/openid-connect/userinfo',
    end_session: '/protocol/openid-connect/logout', introspection: '/protocol/openid-connect/token/introspect',
    revocation: '/protocol/openid-connect/revoke',
  },
  ttl: { AccessToken: TTL, ClientCredentials: TTL },
  clients,
  findAccount: async (ctx, id) => (users[id] ? {
    accountId: id, claims: async () => ({ sub: id, preferred_username: id, email: users[id].email, name: users[id].name }),
  } : undefined),
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: { enabled: true, useGrantedResource: () => true,
      defaultResource: () => `urn:${AUDIENCE}`, getResourceServerInfo: () => RS },
  },
  formats: { customizers: { jwt: (ctx, token, jwt) => { jwt.header = { ...jwt.header, typ: 'JWT', kid: KID }; } } },
  extraTokenClaims: async (ctx, token) => ({
    typ: 'Bearer',
    azp: token.clientId,
    preferred_username: token.accountId ?? `service-account-${token.clientId}`,
    realm_access: { roles: token.accountId ? (users[token.accountId]?.roles ?? []) : [] },
  }),
});

// Keycloak's direct access grant (grant_type=password) for clients that enable it.
provider.registerGrantType('password', async (ctx) => {
  const { username, password } = ctx.oidc.params;
  const user = users[username];
  if (!user || user.password !== password) {
    ctx.status = 401; ctx.body = { error: 'invalid_grant', error_description: 'Invalid user credentials' }; return;
  }
  const at = new provider.AccessToken({ accountId: username, client: ctx.oidc.client, gty: 'password', scope: 'openid profile email' });
  at.resourceServer = new provider.ResourceServer(`urn:${AUDIENCE}`, RS);
  ctx.body = { access_token: await at.save(), token_type: 'Bearer', expires_in: at.expiration, scope: 'openid profile email' };
}, ['username', 'password', 'scope']);

// Test-only: sign an arbitrary header/payload with the provider's real key, so that tests can
// present tokens no correct issuer would mint (expired, not yet valid, wrong iss/aud, tampered).
let signingKey = await jose.importJWK(privateJwk, 'RS256');
let signingKid = KID;
// Test-only key rotation: from now on test-only/sign uses a new key and the JWKS publishes only
// that key (the old one is withdrawn). Tokens of the provider's own grants keep the old key.
let rotatedJwks = null;
let rotations = 0;
async function testOnlyRotate(res) {
  const { privateKey: next } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  rotations += 1;
  signingKid = `${KID}-rotated-${rotations}`;
  const nextJwk = { ...next.export({ format: 'jwk' }), kid: signingKid, alg: 'RS256', use: 'sig' };
  signingKey = await jose.importJWK(nextJwk, 'RS256');
  const { d, p, q, dp, dq, qi, ...publicJwk } = nextJwk;
  rotatedJwks = { keys: [publicJwk] };
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid: signingKid }));
}
async function testOnlySign(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const { header = {}, payload = {} } = JSON.parse(body || '{}');
  const token = await new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signingKid, ...header }).sign(signingKey);
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url === `${PREFIX}/test-only/sign` && req.method === 'POST' && process.env.ENABLE_TEST_SIGNING === '1') {
    testOnlySign(req, res).catch((e) => res.writeHead(400).end(String(e))); return;
  }
  if (req.url === `${PREFIX}/test-only/rotate` && req.method === 'POST' && process.env.ENABLE_TEST_SIGNING === '1') {
    testOnlyRotate(res).catch((e) => res.writeHead(400).end(String(e))); return;
  }
  if (rotatedJwks !== null && req.url === `${PREFIX}/protocol/openid-connect/certs`) {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(rotatedJwks)); return;
  }
  if (!req.url.startsWith(PREFIX + '/')) { res.writeHead(404).end(); return; }
  req.originalUrl = req.url; req.url = req.url.slice(PREFIX.length); callback(req, res);
}).listen(PORT, HOST, () => console.log(`oidc provider ready at ${ISSUER}`));
