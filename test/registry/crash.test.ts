/**
 * Crash safety: the registry is killed with SIGKILL in the middle of uploads
 * and manifest pushes, then restarted on the same root. No partial or
 * unverified blob may ever be visible, every stored blob must hash to its
 * name, every tag must lead to a complete image, and an upload cut by the
 * crash must resume from what reached the disk.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RegistryClient } from './helpers/client.js';
import { resolveLocation, withQuery } from './helpers/http.js';
import { makeImage, sha256 } from './helpers/images.js';
import { type ServerProcess, removeDir, startBerth, tempDir } from './helpers/procs.js';

async function hashFile(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Checks the on-disk invariants and, through the API, that every tag leads to a whole image. */
async function checkIntegrity(server: ServerProcess): Promise<{ blobs: number; tags: number }> {
  const blobsDir = path.join(server.root, 'blobs', 'sha256');
  let blobs = 0;
  for (const prefix of await fsp.readdir(blobsDir)) {
    for (const name of await fsp.readdir(path.join(blobsDir, prefix))) {
      assert.equal(await hashFile(path.join(blobsDir, prefix, name)), `sha256:${name}`, `blob ${name} does not match its digest`);
      blobs++;
    }
  }
  assert.deepEqual(await fsp.readdir(path.join(server.root, 'tmp')), [], 'temporary files were cleaned at start');
  const client = new RegistryClient(server.url);
  const catalog = (await client.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
  let tags = 0;
  for (const repo of catalog) {
    const list = await client.req('GET', `/v2/${repo}/tags/list`);
    for (const tag of list.json<{ tags: string[] }>().tags) {
      const m = await client.req('GET', `/v2/${repo}/manifests/${tag}`);
      assert.equal(m.status, 200, `${repo}:${tag}`);
      assert.equal(sha256(m.body), m.headers['docker-content-digest']);
      const doc = m.json<{ config: { digest: string }; layers: { digest: string }[] }>();
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
        const b = await client.req('GET', `/v2/${repo}/blobs/${d}`);
        assert.equal(b.status, 200, `${repo}:${tag} blob ${d}`);
        assert.equal(sha256(b.body), d);
      }
      tags++;
    }
  }
  return { blobs, tags };
}

describe('crash safety (kill -9)', () => {
  it('an upload cut by a crash leaves no blob, and resumes after restart', async () => {
    const root = await tempDir('crash');
    let server = await startBerth({ root });
    try {
      const client = new RegistryClient(server.url);
      const data = crypto.randomBytes(24 << 20);
      const digest = sha256(data);
      const location = new URL(await client.startUpload('crash/app'));
      // Stream the body slowly; kill the server once about a third has gone out.
      let sent = 0;
      const req = http.request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length } });
      req.on('error', () => undefined);
      const killed = (async () => {
        while (sent < data.length / 3) {
          const chunk = data.subarray(sent, sent + (256 << 10));
          sent += chunk.length;
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        await new Promise((r) => setTimeout(r, 100));
        await server.stop('SIGKILL');
        req.destroy();
      })();
      await killed;
      server = await startBerth({ root });
      const resumed = new RegistryClient(server.url);
      assert.equal(await resumed.blobStatus('crash/app', digest), 404, 'no partial blob is visible');
      const status = await resumed.req('GET', `${server.url}${location.pathname}`);
      assert.equal(status.status, 204);
      const have = Number(/^0-(\d+)$/.exec(String(status.headers.range))![1]) + 1;
      assert.ok(have > 0 && have <= sent, `upload holds ${have} of ${sent} bytes sent`);
      const patch = await resumed.req('PATCH', resolveLocation(server.url, status.headers.location), {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${have}-${data.length - 1}`, 'Content-Length': data.length - have },
        body: data.subarray(have),
      });
      assert.equal(patch.status, 202, patch.text());
      const put = await resumed.req('PUT', withQuery(resolveLocation(server.url, patch.headers.location), { digest }), { headers: { 'Content-Length': 0 } });
      assert.equal(put.status, 201, put.text());
      const got = await resumed.req('GET', `/v2/crash/app/blobs/${digest}`);
      assert.equal(sha256(got.body), digest);
    } finally {
      await server.stop();
      await removeDir(root);
    }
  });

  it('repeated kill -9 during concurrent pushes never leaves a partial blob or a broken tag', async () => {
    const root = await tempDir('crash');
    const images = await Promise.all(Array.from({ length: 6 }, () => makeImage({ layers: 2, layerBytes: 400_000 })));
    let completed = 0;
    for (let round = 0; round < 4; round++) {
      const server = await startBerth({ root });
      try {
        await checkIntegrity(server);
        const client = new RegistryClient(server.url);
        const pushes = images.map(async (image, i) => {
          try {
            await client.pushImage(`crash/r${round}`, `t${i}`, image, (['patch-whole', 'put-body', 'chunked'] as const)[i % 3]);
            completed++;
          } catch {
            // Cut off by the kill: fine, as long as nothing half-written shows.
          }
        });
        await new Promise((r) => setTimeout(r, 40 + round * 60));
        await server.stop('SIGKILL');
        await Promise.all(pushes);
      } finally {
        await server.stop();
      }
    }
    const server = await startBerth({ root });
    try {
      const { tags } = await checkIntegrity(server);
      assert.ok(completed < images.length * 4, 'the kills interrupted pushes (else this test proves nothing)');
      assert.ok(tags >= completed, `every push that completed is there (${tags} tags, ${completed} completed)`);
    } finally {
      await server.stop();
      await removeDir(root);
    }
  });
});
