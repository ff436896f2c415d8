/** The server process itself: deletes disabled, clean stop on SIGTERM, clear refusals of bad flags and configs. */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { describe, it } from 'node:test';
import { RegistryClient, errorCodes } from './helpers/client.js';
import { makeImage } from './helpers/images.js';
import { BERTH_BIN, removeDir, run, startBerth, tempDir } from './helpers/procs.js';

describe('registry server process', () => {
  it('with deletes disabled, DELETE of manifests, tags and blobs is 405 UNSUPPORTED and changes nothing', async () => {
    const server = await startBerth({ args: ['--disable-delete'] });
    try {
      const client = new RegistryClient(server.url);
      const image = await makeImage({ layers: 1 });
      await client.pushImage('nodelete/app', 'v1', image);
      for (const p of [`/v2/nodelete/app/manifests/${image.manifestDigest}`, '/v2/nodelete/app/manifests/v1', `/v2/nodelete/app/blobs/${image.layers[0]!.digest}`]) {
        const res = await client.req('DELETE', p);
        assert.equal(res.status, 405, p);
        assert.deepEqual(errorCodes(res), ['UNSUPPORTED']);
      }
      assert.equal((await client.req('GET', '/v2/nodelete/app/manifests/v1')).status, 200);
      assert.equal(await client.blobStatus('nodelete/app', image.layers[0]!.digest), 200);
    } finally {
      await server.stop();
      await removeDir(server.root);
    }
  });

  it('survives malformed requests, answering each with a 4xx', async () => {
    const server = await startBerth();
    try {
      const { hostname, port } = new URL(server.url);
      const raw = (text: string): Promise<string> =>
        new Promise((resolve) => {
          let out = '';
          // No half-close: a server may drop a request whose client already said FIN.
          const sock = net.connect(Number(port), hostname, () => sock.write(text));
          sock.setEncoding('utf8');
          sock.on('data', (d: string) => {
            out += d;
            if (/^HTTP\/1\.1 \d{3}/.test(out)) sock.destroy();
          });
          sock.on('close', () => resolve(out));
          sock.on('error', () => resolve(out));
          setTimeout(() => sock.destroy(), 2000);
        });
      const cases = [
        'BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /v2/a/blobs/sha256:zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        'GET /v2/a/manifests/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        'PATCH /v2/a/blobs/uploads/not-a-uuid HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
        'PUT /v2/a/manifests/latest HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
        'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'a'.repeat(70_000) + '\r\n\r\n',
        'GET http://[bad/v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        'POST /v2/a/blobs/uploads/?digest=sha256:00&mount=x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
        'not http at all\r\n\r\n',
      ];
      for (const text of cases) {
        const answer = await raw(text);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
        assert.ok(status >= 400 && status < 500, `${JSON.stringify(text.slice(0, 40))} answered ${status}`);
      }
      const client = new RegistryClient(server.url);
      const location = await client.startUpload('fuzz/app');
      const badRange = await client.req('PATCH', location, { headers: { 'Content-Range': '5-1', 'Content-Length': 0 } });
      assert.equal(badRange.status, 416);
      assert.equal((await client.req('GET', '/v2/')).status, 200, 'still serving');
      assert.equal(server.child.exitCode, null);
      assert.ok(!server.logs.some((l) => l.includes('"level":"error"')), server.logs.join('\n'));
    } finally {
      await server.stop();
      await removeDir(server.root);
    }
  });

  it('stops cleanly on SIGTERM (exit 0) and logs JSON lines', async () => {
    const server = await startBerth();
    const client = new RegistryClient(server.url);
    assert.equal((await client.req('GET', '/v2/')).status, 200);
    const code = await server.stop('SIGTERM');
    assert.equal(code, 0);
    for (const line of server.logs) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(server.logs.some((l) => (JSON.parse(l) as { msg: string }).msg === 'stopped'));
    await removeDir(server.root);
  });

  it('refuses unknown flags, missing values and bad configs with a clear message', async () => {
    const dir = await tempDir('cli');
    try {
      const berth = (args: string[]): ReturnType<typeof run> => run(process.execPath, [BERTH_BIN, 'registry', ...args], { allowFail: true, timeoutMs: 20_000 });
      const unknown = berth(['serve', '--root', dir, '--bogus']);
      assert.equal(unknown.status, 2);
      assert.match(unknown.stderr, /unknown flag --bogus/);
      assert.match(berth(['serve']).stderr, /--root is required/);
      assert.match(berth(['serve', '--root', dir, '--tls-cert', 'x']).stderr, /--tls-cert and --tls-key go together/);
      const config = path.join(dir, 'bad.json');
      await fsp.writeFile(config, '{"gc": {"interval": "soon"}}');
      const bad = berth(['serve', '--config', config, '--root', dir]);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /gc\.interval: invalid duration/);
      const htpasswd = path.join(dir, 'htpasswd');
      await fsp.writeFile(htpasswd, 'bob:plaintext\n');
      assert.match(berth(['serve', '--root', dir, '--addr', '127.0.0.1:0', '--htpasswd', htpasswd]).stderr, /no bcrypt hash/);
      assert.match(berth(['serve', '--root', dir, '--addr', '127.0.0.1:0', '--token-auth']).stderr, /needs an htpasswd file/);
      assert.equal(berth(['bogus']).status, 2);
    } finally {
      await removeDir(dir);
    }
  });
});
