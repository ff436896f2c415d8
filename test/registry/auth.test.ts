/**
 * Authentication against a real registry process: htpasswd Basic, the Bearer
 * token service (challenge, GET and POST /token, refresh tokens, scopes,
 * expiry), per-user access rules, anonymous pull, and TLS.
 */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicAuth, writeCert, writeHtpasswd } from './helpers/auth-files.js';
import { RegistryClient, errorCodes } from './helpers/client.js';
import { request } from './helpers/http.js';
import { makeImage, writeOciLayout } from './helpers/images.js';
import { type ServerProcess, removeDir, requireTool, run, startBerth, tempDir } from './helpers/procs.js';

interface TokenBody {
  token: string;
  access_token: string;
  expires_in: number;
  refresh_token?: string;
}

function parseChallenge(header: string | string[] | undefined): Record<string, string> {
  const value = String(header ?? '');
  const out: Record<string, string> = { scheme: value.split(' ')[0] ?? '' };
  for (const m of value.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

describe('auth', () => {
  let work: string;
  let htpasswd: string;
  const servers: ServerProcess[] = [];

  before(async () => {
    work = await tempDir('auth');
    htpasswd = await writeHtpasswd(work, { alice: 'alice-pw', bob: 'bob-pw' });
  });
  after(async () => {
    for (const s of servers) {
      await s.stop();
      await removeDir(s.root);
    }
    await removeDir(work);
  });

  async function start(args: string[]): Promise<ServerProcess> {
    const s = await startBerth({ args });
    servers.push(s);
    return s;
  }

  describe('basic', () => {
    let server: ServerProcess;
    before(async () => {
      server = await start(['--htpasswd', htpasswd]);
    });

    it('challenges with Basic and checks the password', async () => {
      const none = await request('GET', `${server.url}/v2/`);
      assert.equal(none.status, 401);
      assert.equal(parseChallenge(none.headers['www-authenticate']).scheme, 'Basic');
      assert.deepEqual(errorCodes(none as never), ['UNAUTHORIZED']);
      const wrong = await request('GET', `${server.url}/v2/`, { headers: { Authorization: basicAuth('alice', 'nope') } });
      assert.equal(wrong.status, 401);
      const unknown = await request('GET', `${server.url}/v2/`, { headers: { Authorization: basicAuth('mallory', 'alice-pw') } });
      assert.equal(unknown.status, 401);
      const right = await request('GET', `${server.url}/v2/`, { headers: { Authorization: basicAuth('alice', 'alice-pw') } });
      assert.equal(right.status, 200);
    });

    it('an authenticated client pushes and pulls; an anonymous one cannot pull', async () => {
      const client = new RegistryClient(server.url, { Authorization: basicAuth('bob', 'bob-pw') });
      const image = await makeImage({ layers: 1 });
      await client.pushImage('team/app', 'v1', image);
      assert.equal((await client.req('GET', '/v2/team/app/manifests/v1')).status, 200);
      const anon = await request('GET', `${server.url}/v2/team/app/manifests/v1`);
      assert.equal(anon.status, 401);
    });

    it('the token endpoint is not served in Basic mode', async () => {
      const res = await request('GET', `${server.url}/token?scope=repository:x:pull`, { headers: { Authorization: basicAuth('alice', 'alice-pw') } });
      assert.notEqual(res.status, 200);
    });
  });

  describe('token service', () => {
    let server: ServerProcess;
    before(async () => {
      server = await start(['--htpasswd', htpasswd, '--token-auth', '--token-service', 'berth-test']);
    });

    async function getToken(scope: string, user?: string, password?: string): Promise<TokenBody> {
      const headers: Record<string, string> = user === undefined ? {} : { Authorization: basicAuth(user, password!) };
      const res = await request('GET', `${server.url}/token?service=berth-test&scope=${encodeURIComponent(scope)}`, { headers });
      assert.equal(res.status, 200, res.text());
      return res.json<TokenBody>();
    }

    it('challenges with Bearer realm, service and scope', async () => {
      const ping = await request('GET', `${server.url}/v2/`);
      assert.equal(ping.status, 401);
      const ch = parseChallenge(ping.headers['www-authenticate']);
      assert.equal(ch.scheme, 'Bearer');
      assert.equal(ch.realm, `${server.url}/token`);
      assert.equal(ch.service, 'berth-test');
      const manifest = await request('GET', `${server.url}/v2/some/repo/manifests/latest`);
      assert.equal(parseChallenge(manifest.headers['www-authenticate']).scope, 'repository:some/repo:pull');
    });

    it('GET /token grants the scopes asked for; the token opens the registry', async () => {
      const body = await getToken('repository:tok/app:pull,push', 'alice', 'alice-pw');
      assert.equal(body.token, body.access_token);
      assert.ok(body.expires_in > 0);
      assert.equal(body.refresh_token, undefined, 'no refresh token unless asked');
      const client = new RegistryClient(server.url, { Authorization: `Bearer ${body.token}` });
      await client.pushImage('tok/app', 'v1', await makeImage({ layers: 1 }));
      assert.equal((await client.req('GET', '/v2/tok/app/tags/list')).status, 200);
      assert.equal((await client.req('GET', '/v2/')).status, 200);
    });

    it('a token is limited to its scope: other repositories and actions get insufficient_scope', async () => {
      const pullOnly = await getToken('repository:tok/app:pull', 'alice', 'alice-pw');
      const client = new RegistryClient(server.url, { Authorization: `Bearer ${pullOnly.token}` });
      const push = await client.req('POST', '/v2/tok/app/blobs/uploads/', { headers: { 'Content-Length': 0 } });
      assert.equal(push.status, 401);
      const ch = parseChallenge(push.headers['www-authenticate']);
      assert.equal(ch.error, 'insufficient_scope');
      assert.equal(ch.scope, 'repository:tok/app:push');
      const other = await client.req('GET', '/v2/tok/other/tags/list');
      assert.equal(other.status, 401);
    });

    it('wrong credentials at /token are 401; forged or garbage tokens are refused', async () => {
      const res = await request('GET', `${server.url}/token?service=berth-test&scope=repository:x:pull`, { headers: { Authorization: basicAuth('alice', 'bad') } });
      assert.equal(res.status, 401);
      const good = await getToken('repository:tok/app:pull,push', 'alice', 'alice-pw');
      const [h, p] = good.token.split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { access: { actions: string[] }[] };
      claims.access[0]!.actions = ['pull', 'push', 'delete'];
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${good.token.split('.')[2]}`;
      for (const t of [forged, 'garbage', '']) {
        const r = await request('GET', `${server.url}/v2/tok/app/tags/list`, { headers: { Authorization: `Bearer ${t}` } });
        assert.equal(r.status, 401, `token ${t.slice(0, 10)}`);
      }
    });

    it('POST /token: password grant with a refresh token, then the refresh grant', async () => {
      const form = new URLSearchParams({ grant_type: 'password', username: 'bob', password: 'bob-pw', service: 'berth-test', scope: 'repository:bob/app:pull,push', access_type: 'offline', client_id: 'test' });
      const res = await request('POST', `${server.url}/token`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      assert.equal(res.status, 200, res.text());
      const first = res.json<TokenBody>();
      assert.ok(first.refresh_token);
      const refresh = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token, service: 'berth-test', scope: 'repository:bob/app:pull', client_id: 'test' });
      const res2 = await request('POST', `${server.url}/token`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: refresh.toString() });
      assert.equal(res2.status, 200, res2.text());
      const second = res2.json<TokenBody>();
      const pull = await request('GET', `${server.url}/v2/bob/app/manifests/x`, { headers: { Authorization: `Bearer ${second.access_token}` } });
      assert.equal(pull.status, 404, 'authorized (the manifest simply does not exist)');
      // A refresh token is not an access token, and an access token is not a refresh token.
      assert.equal((await request('GET', `${server.url}/v2/`, { headers: { Authorization: `Bearer ${first.refresh_token}` } })).status, 401);
      const misuse = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.access_token, service: 'berth-test' });
      assert.equal((await request('POST', `${server.url}/token`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: misuse.toString() })).status, 401);
      const bad = new URLSearchParams({ grant_type: 'password', username: 'bob', password: 'x', service: 'berth-test' });
      assert.equal((await request('POST', `${server.url}/token`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: bad.toString() })).status, 401);
    });

    it('GET /token with offline_token=true hands out a refresh token (docker login)', async () => {
      const res = await request('GET', `${server.url}/token?service=berth-test&offline_token=true&client_id=docker`, { headers: { Authorization: basicAuth('alice', 'alice-pw') } });
      assert.equal(res.status, 200);
      assert.ok(res.json<TokenBody>().refresh_token);
    });

    it('Basic credentials work directly too (a daemon may log in either way)', async () => {
      const res = await request('GET', `${server.url}/v2/`, { headers: { Authorization: basicAuth('alice', 'alice-pw') } });
      assert.equal(res.status, 200);
    });
  });

  describe('expiry', () => {
    it('an expired access token is refused with invalid_token', async () => {
      const server = await start(['--htpasswd', htpasswd, '--token-auth', '--token-expiry', '2s']);
      const res = await request('GET', `${server.url}/token?scope=repository:x/y:pull`, { headers: { Authorization: basicAuth('alice', 'alice-pw') } });
      const { token } = res.json<TokenBody>();
      assert.equal((await request('GET', `${server.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
      await new Promise((r) => setTimeout(r, 3500));
      const late = await request('GET', `${server.url}/v2/`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(late.status, 401);
      assert.equal(parseChallenge(late.headers['www-authenticate']).error, 'invalid_token');
    });
  });

  describe('access rules and anonymous pull', () => {
    let basicServer: ServerProcess;
    let tokenServer: ServerProcess;
    before(async () => {
      const config = path.join(work, 'config.json');
      await fsp.writeFile(
        config,
        JSON.stringify({
          auth: {
            anonymousPull: true,
            access: [
              { account: 'alice', repository: '*', actions: ['*'] },
              { account: 'bob', repository: 'bob/*', actions: ['pull', 'push'] },
              { account: 'bob', repository: 'shared/*', actions: ['pull'] },
            ],
          },
        }),
      );
      basicServer = await start(['--config', config, '--htpasswd', htpasswd]);
      tokenServer = await start(['--config', config, '--htpasswd', htpasswd, '--token-auth']);
      for (const s of [basicServer, tokenServer]) {
        await new RegistryClient(s.url, { Authorization: basicAuth('alice', 'alice-pw') }).pushImage('shared/base', 'v1', await makeImage({ layers: 1 }));
      }
    });

    it('Basic: a user outside their rules gets 403 DENIED; inside them works', async () => {
      const bob = new RegistryClient(basicServer.url, { Authorization: basicAuth('bob', 'bob-pw') });
      const denied = await bob.req('POST', '/v2/shared/base/blobs/uploads/', { headers: { 'Content-Length': 0 } });
      assert.equal(denied.status, 403);
      assert.deepEqual(errorCodes(denied), ['DENIED']);
      assert.equal((await bob.req('GET', '/v2/shared/base/manifests/v1')).status, 200);
      await bob.pushImage('bob/app', 'v1', await makeImage({ layers: 1 }));
      assert.equal((await bob.req('DELETE', '/v2/bob/app/manifests/v1')).status, 403, 'bob has no delete');
      assert.equal((await bob.req('GET', '/v2/_catalog')).status, 403, 'the catalog needs an all-repositories rule');
      const alice = new RegistryClient(basicServer.url, { Authorization: basicAuth('alice', 'alice-pw') });
      assert.equal((await alice.req('GET', '/v2/_catalog')).status, 200);
    });

    it('anonymous clients may pull but not push', async () => {
      for (const s of [basicServer, tokenServer]) {
        assert.equal((await request('GET', `${s.url}/v2/shared/base/manifests/v1`)).status, 200);
        const push = await request('POST', `${s.url}/v2/shared/base/blobs/uploads/`, { headers: { 'Content-Length': 0 } });
        assert.equal(push.status, 401);
      }
    });

    it('Token: the service grants only what the rules allow', async () => {
      const res = await request('GET', `${tokenServer.url}/token?scope=${encodeURIComponent('repository:shared/base:pull,push')}&scope=${encodeURIComponent('repository:bob/x:pull,push')}`, {
        headers: { Authorization: basicAuth('bob', 'bob-pw') },
      });
      const { token } = res.json<TokenBody>();
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: { name: string; actions: string[] }[] };
      assert.deepEqual(claims.access, [
        { type: 'repository', name: 'shared/base', actions: ['pull'] },
        { type: 'repository', name: 'bob/x', actions: ['pull', 'push'] },
      ]);
      const anon = await request('GET', `${tokenServer.url}/token?scope=${encodeURIComponent('repository:shared/base:pull,push')}`);
      const anonClaims = JSON.parse(Buffer.from(anon.json<TokenBody>().token.split('.')[1]!, 'base64url').toString()) as { access: { actions: string[] }[] };
      assert.deepEqual(anonClaims.access[0]!.actions, ['pull']);
      assert.equal(anon.json<TokenBody>().refresh_token, undefined);
    });
  });

  describe('TLS', () => {
    it('serves HTTPS with the given certificate; skopeo verifies it with the CA', async () => {
      requireTool('skopeo', 'skopeo');
      const tls = await writeCert(work);
      const server = await start(['--tls-cert', tls.cert, '--tls-key', tls.key, '--htpasswd', htpasswd, '--token-auth']);
      assert.ok(server.url.startsWith('https://'));
      const ping = await request('GET', `${server.url}/v2/`, { ca: tls.ca });
      assert.equal(ping.status, 401);
      assert.equal(parseChallenge(ping.headers['www-authenticate']).realm, `${server.url}/token`);
      await assert.rejects(request('GET', `${server.url}/v2/`), /self.signed|certificate/i);
      const image = await makeImage({ layers: 1 });
      const layout = path.join(work, 'tls-layout');
      await writeOciLayout(layout, image, 'v1');
      run('skopeo', ['copy', `--dest-cert-dir=${tls.certDir}`, '--dest-creds=alice:alice-pw', `oci:${layout}:v1`, `docker://${server.host}/tls/app:v1`]);
      const inspect = run('skopeo', ['inspect', `--cert-dir=${tls.certDir}`, '--creds=alice:alice-pw', `docker://${server.host}/tls/app:v1`]);
      assert.equal((JSON.parse(inspect.stdout) as { Digest: string }).Digest, image.manifestDigest);
      const unverified = run('skopeo', ['inspect', '--creds=alice:alice-pw', `docker://${server.host}/tls/app:v1`], { allowFail: true });
      assert.notEqual(unverified.status, 0, 'an unknown CA must be refused');
    });
  });
});
