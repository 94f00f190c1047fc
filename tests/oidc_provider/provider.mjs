// A real OpenID provider (panva's oidc-provider) for Revenge's single sign-on tests.
//
//   PORT=... OIDC_TEST_CONFIG='{"clients": [...], "accounts": {...}, "jwk": {...}}' node provider.mjs
//
// Its login needs no page: GET /interaction/<uid> signs in the account named by the
// authorization request's login_hint (else the first account) and grants what the
// client asked for, so a test drives the whole flow with an HTTP client that follows
// redirects. Everything else is the library's own: discovery, JWKS, PKCE, codes,
// ID tokens signed with the configured key.
//
// POST /__test/mode {"token": ..., "discovery": ..., "jwks": ..., "code_ttl": ..., "delay": ...,
// "cache_control": ...}
// sets what the provider does wrong next, for the cases a correct provider never
// produces: an ID token with a changed claim (signature kept), `alg: none`, signed
// with a key it never published, expired, for another audience or issuer (re-signed
// with its real key); an enormous, malformed or slow discovery document or JWKS.
// The test says which cases come from here.
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const config = JSON.parse(process.env.OIDC_TEST_CONFIG || '{}');
const accounts = config.accounts || {};
const signingJwk = config.jwk;

const NORMAL = { token: null, discovery: null, jwks: null, code_ttl: 60, delay: 0, cache_control: null };
let mode = { ...NORMAL };

const configuration = {
  clients: config.clients || [],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['revenge-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  ttl: {
    AuthorizationCode: () => mode.code_ttl,
    IdToken: 3600,
    AccessToken: 3600,
    Interaction: 3600,
    Session: 3600,
    Grant: 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const claims = accounts[sub];
    if (!claims) return undefined;
    return { accountId: sub, async claims() { return { sub, ...claims }; } };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = true;

const resign = async (token, change) => {
  const [, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  change(claims);
  const key = await jose.importJWK(signingJwk, 'RS256');
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' })
    .sign(key);
};

const mischief = {
  async tamper(token) {
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.sub = 'mallory';
    return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
  },
  async alg_none(token) {
    const [, payload] = token.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    return `${header}.${payload}.`;
  },
  async foreign_key(token) {
    const [, payload] = token.split('.');
    const { privateKey } = await jose.generateKeyPair('RS256');
    return new jose.SignJWT(JSON.parse(Buffer.from(payload, 'base64url').toString()))
      .setProtectedHeader({ alg: 'RS256', kid: 'never-published', typ: 'JWT' })
      .sign(privateKey);
  },
  async foreign_key_same_kid(token) {
    const [, payload] = token.split('.');
    const { privateKey } = await jose.generateKeyPair('RS256');
    return new jose.SignJWT(JSON.parse(Buffer.from(payload, 'base64url').toString()))
      .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' })
      .sign(privateKey);
  },
  expired: (token) => resign(token, (c) => { c.iat -= 7200; c.exp = c.iat + 60; }),
  wrong_audience: (token) => resign(token, (c) => { c.aud = 'someone-else'; }),
  wrong_issuer: (token) => resign(token, (c) => { c.iss = 'http://127.0.0.1:1/elsewhere'; }),
  hs256: async (token) => {
    // Signed with the client's own secret as an HMAC key: a provider using RS256 never does.
    const [, payload] = token.split('.');
    const secret = new TextEncoder().encode(config.clients[0].client_secret);
    return new jose.SignJWT(JSON.parse(Buffer.from(payload, 'base64url').toString()))
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(secret);
  },
};

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const badDocument = async (ctx, what) => {
  if (what === 'huge') {
    ctx.type = 'application/json';
    ctx.body = `{"padding": "${'x'.repeat(3 * 1024 * 1024)}"}`;
  } else if (what === 'malformed') {
    ctx.type = 'application/json';
    ctx.body = '{"issuer": "half a docu';
  } else if (what === 'not_an_object') {
    ctx.type = 'application/json';
    ctx.body = '[1, 2, 3]';
  } else if (what === 'slow') {
    await sleep(30000);
    ctx.body = {};
  } else if (what === 'error') {
    ctx.status = 500;
    ctx.body = 'internal error';
  }
};

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/mode' && ctx.method === 'POST') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    mode = { ...NORMAL, ...JSON.parse(Buffer.concat(chunks).toString() || '{}') };
    ctx.body = mode;
    return;
  }
  if (mode.delay) await sleep(mode.delay * 1000);
  if (ctx.path === '/.well-known/openid-configuration' && mode.discovery) {
    await badDocument(ctx, mode.discovery);
    return;
  }
  if (ctx.path === '/jwks' && mode.jwks) {
    await badDocument(ctx, mode.jwks);
    return;
  }
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session } = details;
    let result;
    if (prompt.name === 'login') {
      const hint = params.login_hint;
      const accountId = hint && accounts[hint] ? hint : Object.keys(accounts)[0];
      result = { login: { accountId } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  await next();
  const document = ctx.path === '/.well-known/openid-configuration' || ctx.path === '/jwks';
  if (document && mode.cache_control) ctx.set('cache-control', mode.cache_control);
  if (ctx.path === '/token' && ctx.status === 200 && mode.token && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await mischief[mode.token](ctx.body.id_token) };
  }
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
