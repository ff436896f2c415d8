/**
 * The OCI Distribution conformance categories (pull, push with every upload
 * shape, content discovery with referrers, content management with deletes)
 * plus the bad-input cases, run against the Berth registry and against CNCF
 * distribution 2.8 in the same suite. Passing on distribution shows the tests
 * encode the protocol, not Berth's quirks. Where distribution 2.8 lacks a
 * feature (it predates OCI 1.1) the test is declared a gap for it, and the
 * gap itself is checked: the feature's test must fail there.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, errorCodes } from './helpers/client.js';
import { resolveLocation, withQuery } from './helpers/http.js';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  makeImage,
  makeIndex,
  makeReferrer,
  sha256,
} from './helpers/images.js';
import { type ServerProcess, removeDir, startBerth, startDistribution } from './helpers/procs.js';

/**
 * Features CNCF distribution 2.8 lacks or gets wrong:
 *  referrers, single-post, delete-tag, manifest-size-limit: added in OCI 1.1 / distribution 3;
 *  chunk-order-416: 2.8 accepts an out-of-order chunk with 202;
 *  sorted-tags: 2.8 lists tags in directory order and ignores n=0;
 *  range-416: 2.8's 416 carries the blob's Content-Length over a shorter body (the client sees a reset).
 */
type Gap = 'referrers' | 'single-post' | 'delete-tag' | 'manifest-size-limit' | 'chunk-order-416' | 'sorted-tags' | 'range-416';

interface Target {
  name: string;
  start(): Promise<ServerProcess>;
  gaps: Set<Gap>;
}

const TARGETS: Target[] = [
  { name: 'berth', start: () => startBerth(), gaps: new Set() },
  {
    name: 'CNCF distribution 2.8',
    start: () => startDistribution(),
    gaps: new Set<Gap>(['referrers', 'single-post', 'delete-tag', 'manifest-size-limit', 'chunk-order-416', 'sorted-tags', 'range-416']),
  },
];

function uniqueRepo(prefix: string): string {
  return `conformance/${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

for (const target of TARGETS) {
  describe(`OCI conformance: ${target.name}`, () => {
    let server: ServerProcess;
    let client: RegistryClient;

    before(async () => {
      server = await target.start();
      client = new RegistryClient(server.url);
    });
    after(async () => {
      await server.stop();
      await removeDir(server.root);
    });

    /** A test of a feature the target may lack: on a gap, the test must fail there (the gap is real). */
    function feature(gap: Gap, title: string, fn: () => Promise<void>): void {
      if (!target.gaps.has(gap)) {
        it(title, fn);
        return;
      }
      it(`${title} [gap on ${target.name}: must fail]`, async () => {
        await assert.rejects(fn, `expected ${target.name} to lack "${gap}", but the test passed`);
      });
    }

    describe('pull', () => {
      const repo = uniqueRepo('pull');
      let image: Awaited<ReturnType<typeof makeImage>>;
      before(async () => {
        image = await makeImage({ layers: 2, layerBytes: 4096 });
        await client.pushImage(repo, 'v1', image);
      });

      it('GET /v2/ answers 200 with the API version header', async () => {
        const res = await client.req('GET', '/v2/');
        assert.equal(res.status, 200);
        assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
      });

      it('GET manifest by tag serves the pushed bytes, Content-Type and digest', async () => {
        const res = await client.req('GET', `/v2/${repo}/manifests/v1`, { headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, image.manifest);
        assert.equal(res.headers['content-type'], OCI_MANIFEST);
        assert.equal(res.headers['docker-content-digest'], image.manifestDigest);
      });

      it('GET manifest by digest', async () => {
        const res = await client.req('GET', `/v2/${repo}/manifests/${image.manifestDigest}`, { headers: { Accept: OCI_MANIFEST } });
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, image.manifest);
      });

      it('HEAD manifest carries Content-Length and Docker-Content-Digest, no body', async () => {
        for (const ref of ['v1', image.manifestDigest]) {
          const res = await client.req('HEAD', `/v2/${repo}/manifests/${ref}`, { headers: { Accept: OCI_MANIFEST } });
          assert.equal(res.status, 200);
          assert.equal(Number(res.headers['content-length']), image.manifest.length);
          assert.equal(res.headers['docker-content-digest'], image.manifestDigest);
          assert.equal(res.body.length, 0);
        }
      });

      it('unknown manifests are 404 MANIFEST_UNKNOWN (by tag and by digest)', async () => {
        const byTag = await client.req('GET', `/v2/${repo}/manifests/nope`);
        assert.equal(byTag.status, 404);
        assert.deepEqual(errorCodes(byTag), ['MANIFEST_UNKNOWN']);
        const byDigest = await client.req('GET', `/v2/${repo}/manifests/${sha256('nothing')}`);
        assert.equal(byDigest.status, 404);
        assert.deepEqual(errorCodes(byDigest), ['MANIFEST_UNKNOWN']);
      });

      it('GET and HEAD blob', async () => {
        const layer = image.layers[0]!;
        const res = await client.req('GET', `/v2/${repo}/blobs/${layer.digest}`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, layer.data);
        assert.equal(res.headers['docker-content-digest'], layer.digest);
        const head = await client.req('HEAD', `/v2/${repo}/blobs/${layer.digest}`);
        assert.equal(head.status, 200);
        assert.equal(Number(head.headers['content-length']), layer.data.length);
        assert.equal(head.headers['docker-content-digest'], layer.digest);
      });

      it('blob GET honours Range with 206 and Content-Range', async () => {
        const layer = image.layers[1]!;
        const size = layer.data.length;
        const res = await client.req('GET', `/v2/${repo}/blobs/${layer.digest}`, { headers: { Range: 'bytes=10-19' } });
        assert.equal(res.status, 206);
        assert.equal(res.headers['content-range'], `bytes 10-19/${size}`);
        assert.deepEqual(res.body, layer.data.subarray(10, 20));
        const open = await client.req('GET', `/v2/${repo}/blobs/${layer.digest}`, { headers: { Range: `bytes=${size - 5}-` } });
        assert.equal(open.status, 206);
        assert.deepEqual(open.body, layer.data.subarray(size - 5));
      });

      feature('range-416', 'a Range beyond the blob is 416 with Content-Range bytes */size', async () => {
        const layer = image.layers[1]!;
        const size = layer.data.length;
        const beyond = await client.req('GET', `/v2/${repo}/blobs/${layer.digest}`, { headers: { Range: `bytes=${size + 10}-${size + 20}` } });
        assert.equal(beyond.status, 416);
        assert.equal(beyond.headers['content-range'], `bytes */${size}`);
      });

      it('unknown blobs are 404 BLOB_UNKNOWN; blobs are scoped to their repository', async () => {
        const res = await client.req('GET', `/v2/${repo}/blobs/${sha256(crypto.randomBytes(8))}`);
        assert.equal(res.status, 404);
        assert.deepEqual(errorCodes(res), ['BLOB_UNKNOWN']);
        const other = await client.req('HEAD', `/v2/${uniqueRepo('other')}/blobs/${image.layers[0]!.digest}`);
        assert.equal(other.status, 404);
      });
    });

    describe('push', () => {
      for (const shape of ['patch-whole', 'put-body', 'chunked'] as const) {
        it(`blob upload shape ${shape}: 201 with Location and Docker-Content-Digest`, async () => {
          const repo = uniqueRepo('push');
          const data = crypto.randomBytes(3500);
          const res = await client.pushBlob(repo, data, shape, 1000);
          assert.equal(res.status, 201, res.text());
          assert.equal(res.headers['docker-content-digest'], sha256(data));
          assert.ok(res.headers.location);
          const got = await client.req('GET', resolveLocation(server.url, res.headers.location));
          assert.deepEqual(got.body, data);
        });
      }

      feature('single-post', 'single POST ?digest= upload answers 201', async () => {
        const repo = uniqueRepo('post');
        const data = crypto.randomBytes(2000);
        const res = await client.req('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
          body: data,
        });
        assert.equal(res.status, 201, res.text());
        assert.equal(res.headers['docker-content-digest'], sha256(data));
        assert.deepEqual((await client.req('GET', `/v2/${repo}/blobs/${sha256(data)}`)).body, data);
      });

      it('single POST ?digest= works either way (201, or 202 then PUT)', async () => {
        const repo = uniqueRepo('post');
        const data = crypto.randomBytes(2000);
        const res = await client.pushBlob(repo, data, 'single-post');
        assert.equal(res.status, 201, res.text());
        assert.deepEqual((await client.req('GET', `/v2/${repo}/blobs/${sha256(data)}`)).body, data);
      });

      it('POST ?digest= without a body starts an ordinary upload (202) or is refused, never stores', async () => {
        const repo = uniqueRepo('post');
        const data = crypto.randomBytes(100);
        const res = await client.req('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { headers: { 'Content-Length': 0 } });
        assert.ok(res.status === 202 || res.status === 400, `${res.status}`);
        assert.equal(await client.blobStatus(repo, sha256(data)), 404);
        if (res.status === 202) {
          const put = await client.req('PUT', withQuery(resolveLocation(server.url, res.headers.location), { digest: sha256(data) }), {
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
            body: data,
          });
          assert.equal(put.status, 201);
        }
      });

      it('POST answers 202 with Location; status GET answers 204 with Range', async () => {
        const repo = uniqueRepo('status');
        const post = await client.req('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'Content-Length': 0 } });
        assert.equal(post.status, 202);
        const location = resolveLocation(server.url, post.headers.location);
        const patch = await client.req('PATCH', location, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-9', 'Content-Length': 10 }, body: Buffer.alloc(10, 1) });
        assert.equal(patch.status, 202);
        assert.equal(patch.headers.range, '0-9');
        const status = await client.req('GET', resolveLocation(server.url, patch.headers.location));
        assert.equal(status.status, 204);
        assert.equal(status.headers.range, '0-9');
        assert.ok(status.headers.location);
      });

      feature('chunk-order-416', 'an out-of-order chunk is 416, and the upload resumes from the reported offset', async () => {
        const repo = uniqueRepo('chunks');
        const data = crypto.randomBytes(300);
        let location = await client.startUpload(repo);
        const first = await client.req('PATCH', location, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-99', 'Content-Length': 100 }, body: data.subarray(0, 100) });
        assert.equal(first.status, 202);
        location = resolveLocation(server.url, first.headers.location);
        const skip = await client.req('PATCH', location, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '200-299', 'Content-Length': 100 }, body: data.subarray(200) });
        assert.equal(skip.status, 416);
        const status = await client.req('GET', location);
        assert.equal(status.status, 204);
        assert.equal(status.headers.range, '0-99');
        location = resolveLocation(server.url, status.headers.location);
        const second = await client.req('PATCH', location, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '100-199', 'Content-Length': 100 }, body: data.subarray(100, 200) });
        assert.equal(second.status, 202);
        location = resolveLocation(server.url, second.headers.location);
        // The last chunk rides on the closing PUT.
        const put = await client.req('PUT', withQuery(location, { digest: sha256(data) }), {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '200-299', 'Content-Length': 100 },
          body: data.subarray(200),
        });
        assert.equal(put.status, 201, put.text());
        assert.deepEqual((await client.req('GET', `/v2/${repo}/blobs/${sha256(data)}`)).body, data);
      });

      it('DELETE cancels an upload; its status is then 404 BLOB_UPLOAD_UNKNOWN', async () => {
        const repo = uniqueRepo('cancel');
        const location = await client.startUpload(repo);
        const del = await client.req('DELETE', location);
        assert.equal(del.status, 204);
        const status = await client.req('GET', location);
        assert.equal(status.status, 404);
        assert.deepEqual(errorCodes(status), ['BLOB_UPLOAD_UNKNOWN']);
      });

      it('a wrong digest is 400 DIGEST_INVALID and stores nothing', async () => {
        const repo = uniqueRepo('baddigest');
        const data = crypto.randomBytes(1000);
        const claimed = sha256(crypto.randomBytes(10));
        const location = await client.startUpload(repo);
        const res = await client.req('PUT', withQuery(location, { digest: claimed }), { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length }, body: data });
        assert.equal(res.status, 400);
        assert.deepEqual(errorCodes(res), ['DIGEST_INVALID']);
        assert.equal(await client.blobStatus(repo, claimed), 404);
        assert.equal(await client.blobStatus(repo, sha256(data)), 404);
      });

      it('a malformed digest is 400 DIGEST_INVALID', async () => {
        const repo = uniqueRepo('baddigest');
        const location = await client.startUpload(repo);
        const res = await client.req('PUT', withQuery(location, { digest: 'sha256:xyz' }), { headers: { 'Content-Length': 3 }, body: 'abc' });
        assert.equal(res.status, 400);
        assert.deepEqual(errorCodes(res), ['DIGEST_INVALID']);
      });

      it('cross-repository mount answers 201; an impossible mount starts an upload (202)', async () => {
        const from = uniqueRepo('mount-from');
        const to = uniqueRepo('mount-to');
        const data = crypto.randomBytes(1500);
        assert.equal((await client.pushBlob(from, data)).status, 201);
        const res = await client.req('POST', `/v2/${to}/blobs/uploads/?mount=${sha256(data)}&from=${from}`, { headers: { 'Content-Length': 0 } });
        assert.equal(res.status, 201, res.text());
        assert.equal(res.headers['docker-content-digest'], sha256(data));
        assert.deepEqual((await client.req('GET', resolveLocation(server.url, res.headers.location))).body, data);
        const missing = await client.req('POST', `/v2/${to}/blobs/uploads/?mount=${sha256('absent')}&from=${from}`, { headers: { 'Content-Length': 0 } });
        assert.equal(missing.status, 202);
        assert.ok(missing.headers.location);
      });

      it('manifest PUT answers 201 with Location and Docker-Content-Digest; PUT by digest works', async () => {
        const repo = uniqueRepo('manifest');
        const image = await makeImage();
        for (const blob of [image.config, ...image.layers]) assert.equal((await client.pushBlob(repo, blob.data)).status, 201);
        const res = await client.putManifest(repo, image.manifestDigest, image.manifest, image.mediaType);
        assert.equal(res.status, 201, res.text());
        assert.equal(res.headers['docker-content-digest'], image.manifestDigest);
        assert.ok(res.headers.location);
      });

      it('a manifest PUT by a digest that does not match is 400 DIGEST_INVALID', async () => {
        const repo = uniqueRepo('manifest');
        const image = await makeImage();
        await client.pushImage(repo, 'x', image);
        const res = await client.putManifest(repo, sha256('other'), image.manifest, image.mediaType);
        assert.equal(res.status, 400);
        assert.deepEqual(errorCodes(res), ['DIGEST_INVALID']);
      });

      it('a manifest naming a missing blob is 400 MANIFEST_BLOB_UNKNOWN and is not stored', async () => {
        const repo = uniqueRepo('missing');
        const image = await makeImage();
        assert.equal((await client.pushBlob(repo, image.config.data)).status, 201); // layers never pushed
        const res = await client.putManifest(repo, 'broken', image.manifest, image.mediaType);
        assert.equal(res.status, 400);
        assert.ok(errorCodes(res).includes('MANIFEST_BLOB_UNKNOWN'), res.text());
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/broken`)).status, 404);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/${image.manifestDigest}`)).status, 404);
      });

      it('Docker schema2 manifests and manifest lists keep their media types', async () => {
        const repo = uniqueRepo('docker');
        const a = await makeImage({ docker: true });
        const b = await makeImage({ docker: true, arch: 'arm64' });
        await client.pushImage(repo, 'amd64', a);
        await client.pushImage(repo, 'arm64', b);
        const list = makeIndex([a, b], true);
        const res = await client.putManifest(repo, 'multi', list.bytes, DOCKER_LIST);
        assert.equal(res.status, 201, res.text());
        const got = await client.req('GET', `/v2/${repo}/manifests/multi`, { headers: { Accept: `${DOCKER_MANIFEST}, ${DOCKER_LIST}` } });
        assert.equal(got.headers['content-type'], DOCKER_LIST);
        assert.deepEqual(got.body, list.bytes);
        const child = await client.req('GET', `/v2/${repo}/manifests/${a.manifestDigest}`, { headers: { Accept: DOCKER_MANIFEST } });
        assert.equal(child.headers['content-type'], DOCKER_MANIFEST);
      });

      it('an OCI index over pushed manifests is stored byte-exact', async () => {
        const repo = uniqueRepo('index');
        const a = await makeImage();
        const b = await makeImage({ arch: 'arm64' });
        await client.pushImage(repo, 'a', a);
        await client.pushImage(repo, 'b', b);
        const index = makeIndex([a, b]);
        const res = await client.putManifest(repo, 'multi', index.bytes, OCI_INDEX);
        assert.equal(res.status, 201, res.text());
        const got = await client.req('GET', `/v2/${repo}/manifests/multi`, { headers: { Accept: OCI_INDEX } });
        assert.deepEqual(got.body, index.bytes);
        assert.equal(got.headers['content-type'], OCI_INDEX);
      });

      it('an index naming a missing child manifest is 400 MANIFEST_BLOB_UNKNOWN', async () => {
        const repo = uniqueRepo('index');
        const a = await makeImage();
        const index = makeIndex([a]);
        const res = await client.putManifest(repo, 'multi', index.bytes, OCI_INDEX);
        assert.equal(res.status, 400);
        assert.ok(errorCodes(res).includes('MANIFEST_BLOB_UNKNOWN'), res.text());
      });
    });

    describe('bad input', () => {
      it('a manifest that is not JSON is 400 MANIFEST_INVALID and nothing is stored', async () => {
        const repo = uniqueRepo('bad');
        const res = await client.putManifest(repo, 'x', Buffer.from('this is not json {'), OCI_MANIFEST);
        assert.equal(res.status, 400);
        assert.deepEqual(errorCodes(res), ['MANIFEST_INVALID']);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/x`)).status, 404);
      });

      feature('manifest-size-limit', 'an oversized manifest is 413 and nothing is stored', async () => {
        const repo = uniqueRepo('big');
        const image = await makeImage();
        await client.pushImage(repo, 'ok', image);
        const doc = JSON.parse(image.manifest.toString()) as Record<string, unknown>;
        doc.annotations = { padding: 'x'.repeat(5 << 20) };
        const res = await client.putManifest(repo, 'big', Buffer.from(JSON.stringify(doc)), OCI_MANIFEST);
        assert.equal(res.status, 413);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/big`)).status, 404);
      });

      it('invalid repository names are refused', async () => {
        for (const name of ['UPPER/case', 'a..b', '-lead', 'a/_x']) {
          const res = await client.req('GET', `/v2/${name}/tags/list`);
          assert.ok(res.status === 400 || res.status === 404, `${name}: ${res.status}`);
          assert.notEqual(res.status, 200);
        }
        const push = await client.req('POST', `/v2/Bad_Name!/blobs/uploads/`, { headers: { 'Content-Length': 0 } });
        assert.ok(push.status === 400 || push.status === 404, `${push.status}`);
      });

      it('a truncated upload (connection cut mid-body) stores no blob', async () => {
        const repo = uniqueRepo('truncated');
        const data = crypto.randomBytes(4000);
        const location = new URL(await client.startUpload(repo));
        await new Promise<void>((resolve, reject) => {
          const sock = net.connect(Number(location.port), location.hostname, () => {
            sock.write(
              `PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: ${location.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`,
            );
            sock.write(data.subarray(0, 1500), () => setTimeout(() => sock.destroy(), 100));
          });
          sock.on('close', () => resolve());
          sock.on('error', reject);
        });
        await new Promise((r) => setTimeout(r, 200));
        // Closing with the whole blob's digest must fail: the registry has at most what arrived.
        const put = await client.req('PUT', withQuery(location.toString(), { digest: sha256(data) }), { headers: { 'Content-Length': 0 } });
        assert.ok(put.status >= 400 && put.status < 500, `PUT after truncation: ${put.status}`);
        assert.equal(await client.blobStatus(repo, sha256(data)), 404);
      });
    });

    describe('content discovery', () => {
      it('tags/list lists every tag', async () => {
        const repo = uniqueRepo('tags');
        const image = await makeImage({ layers: 1 });
        await client.pushImage(repo, 'c', image);
        for (const tag of ['a', 'e', 'b', 'd']) assert.equal((await client.putManifest(repo, tag, image.manifest, image.mediaType)).status, 201);
        const all = await client.req('GET', `/v2/${repo}/tags/list`);
        assert.equal(all.status, 200);
        const body = all.json<{ name: string; tags: string[] }>();
        assert.equal(body.name, repo);
        assert.deepEqual([...body.tags].sort(), ['a', 'b', 'c', 'd', 'e']);
      });

      feature('sorted-tags', 'tags/list is sorted and pages with n, last and Link', async () => {
        const repo = uniqueRepo('tags');
        const image = await makeImage({ layers: 1 });
        await client.pushImage(repo, 'c', image);
        for (const tag of ['a', 'e', 'b', 'd']) assert.equal((await client.putManifest(repo, tag, image.manifest, image.mediaType)).status, 201);
        const all = await client.req('GET', `/v2/${repo}/tags/list`);
        assert.equal(all.status, 200);
        assert.deepEqual(all.json(), { name: repo, tags: ['a', 'b', 'c', 'd', 'e'] });
        const page1 = await client.req('GET', `/v2/${repo}/tags/list?n=2`);
        assert.deepEqual(page1.json<{ tags: string[] }>().tags, ['a', 'b']);
        assert.match(String(page1.headers.link), /rel="next"/);
        const page2 = await client.req('GET', `/v2/${repo}/tags/list?n=2&last=b`);
        assert.deepEqual(page2.json<{ tags: string[] }>().tags, ['c', 'd']);
        const rest = await client.req('GET', `/v2/${repo}/tags/list?last=c`);
        assert.deepEqual(rest.json<{ tags: string[] }>().tags, ['d', 'e']);
        const next = resolveLocation(server.url, /<([^>]+)>/.exec(String(page1.headers.link))![1]);
        assert.deepEqual((await client.req('GET', next)).json<{ tags: string[] }>().tags, ['c', 'd']);
      });

      feature('sorted-tags', 'tags/list with n=0 is empty without Link', async () => {
        const repo = uniqueRepo('tags');
        await client.pushImage(repo, 'a', await makeImage({ layers: 1 }));
        const res = await client.req('GET', `/v2/${repo}/tags/list?n=0`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.json<{ tags: string[] | null }>().tags ?? [], []);
        assert.equal(res.headers.link, undefined);
      });

      it('tags/list of an unknown repository is 404 NAME_UNKNOWN', async () => {
        const res = await client.req('GET', `/v2/${uniqueRepo('none')}/tags/list`);
        assert.equal(res.status, 404);
        assert.deepEqual(errorCodes(res), ['NAME_UNKNOWN']);
      });

      it('the catalog lists repositories and pages', async () => {
        const repos = [uniqueRepo('cat'), uniqueRepo('cat')];
        for (const r of repos) await client.pushImage(r, 'latest', await makeImage({ layers: 1 }));
        const res = await client.req('GET', '/v2/_catalog');
        assert.equal(res.status, 200);
        const listed = res.json<{ repositories: string[] }>().repositories;
        for (const r of repos) assert.ok(listed.includes(r), `${r} not in catalog`);
        assert.deepEqual(listed, [...listed].sort());
        const page = await client.req('GET', '/v2/_catalog?n=1');
        assert.equal(page.json<{ repositories: string[] }>().repositories.length, 1);
        assert.match(String(page.headers.link), /rel="next"/);
      });

      feature('referrers', 'referrers: OCI-Subject on push, listing with artifactType filter, subject pushed later', async () => {
        const repo = uniqueRepo('referrers');
        const subject = await makeImage({ layers: 1 });
        const subjectDesc = { mediaType: subject.mediaType, digest: subject.manifestDigest, size: subject.manifest.length };
        const sbomBlob = { data: Buffer.from('{"sbom":true}'), digest: sha256('{"sbom":true}'), mediaType: 'application/json' };
        const sigBlob = { data: Buffer.from('signature'), digest: sha256('signature'), mediaType: 'application/octet-stream' };
        for (const b of [sbomBlob, sigBlob, { data: Buffer.from('{}') }]) assert.equal((await client.pushBlob(repo, b.data)).status, 201);
        // A referrer may arrive before its subject.
        const sbom = makeReferrer(subjectDesc, 'application/vnd.example.sbom.v1', sbomBlob, { 'org.example.kind': 'sbom' });
        const put = await client.putManifest(repo, sbom.digest, sbom.bytes, OCI_MANIFEST);
        assert.equal(put.status, 201, put.text());
        assert.equal(put.headers['oci-subject'], subject.manifestDigest);
        await client.pushImage(repo, 'v1', subject);
        const sig = makeReferrer(subjectDesc, 'application/vnd.example.signature.v1', sigBlob);
        assert.equal((await client.putManifest(repo, sig.digest, sig.bytes, OCI_MANIFEST)).status, 201);

        const res = await client.req('GET', `/v2/${repo}/referrers/${subject.manifestDigest}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], OCI_INDEX);
        const index = res.json<{ schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType: string; annotations?: Record<string, string>; size: number }[] }>();
        assert.equal(index.schemaVersion, 2);
        assert.equal(index.mediaType, OCI_INDEX);
        assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [sbom.digest, sig.digest].sort());
        const sbomEntry = index.manifests.find((m) => m.digest === sbom.digest)!;
        assert.equal(sbomEntry.artifactType, 'application/vnd.example.sbom.v1');
        assert.deepEqual(sbomEntry.annotations, { 'org.example.kind': 'sbom' });
        assert.equal(sbomEntry.size, sbom.bytes.length);

        const filtered = await client.req('GET', `/v2/${repo}/referrers/${subject.manifestDigest}?artifactType=application/vnd.example.signature.v1`);
        assert.equal(filtered.status, 200);
        assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
        assert.deepEqual(filtered.json<{ manifests: { digest: string }[] }>().manifests.map((m) => m.digest), [sig.digest]);

        // Deleting a referrer takes it out of the list.
        assert.equal((await client.req('DELETE', `/v2/${repo}/manifests/${sbom.digest}`)).status, 202);
        const after = await client.req('GET', `/v2/${repo}/referrers/${subject.manifestDigest}`);
        assert.deepEqual(after.json<{ manifests: { digest: string }[] }>().manifests.map((m) => m.digest), [sig.digest]);
      });

      feature('chunk-order-416', 'retrying an already uploaded chunk is 416', async () => {
        const repo = uniqueRepo('retry');
        const location = await client.startUpload(repo);
        const chunk = crypto.randomBytes(50);
        const headers = { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-49', 'Content-Length': 50 };
        const first = await client.req('PATCH', location, { headers, body: chunk });
        assert.equal(first.status, 202);
        const retry = await client.req('PATCH', resolveLocation(server.url, first.headers.location), { headers, body: chunk });
        assert.equal(retry.status, 416);
      });

      feature('referrers', 'referrers of an unknown digest is an empty index, a malformed digest 400', async () => {
        const repo = uniqueRepo('referrers');
        await client.pushImage(repo, 'v1', await makeImage({ layers: 1 }));
        const res = await client.req('GET', `/v2/${repo}/referrers/${sha256('unknown')}`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.json<{ manifests: unknown[] }>().manifests, []);
        const bad = await client.req('GET', `/v2/${repo}/referrers/sha256:nothex`);
        assert.equal(bad.status, 400);
      });
    });

    describe('content management', () => {
      it('DELETE manifest by digest: 202, then it and its tags are gone', async () => {
        const repo = uniqueRepo('delete');
        const image = await makeImage({ layers: 1 });
        await client.pushImage(repo, 'v1', image);
        const del = await client.req('DELETE', `/v2/${repo}/manifests/${image.manifestDigest}`);
        assert.equal(del.status, 202, del.text());
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/${image.manifestDigest}`)).status, 404);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/v1`)).status, 404);
        const again = await client.req('DELETE', `/v2/${repo}/manifests/${image.manifestDigest}`);
        assert.equal(again.status, 404);
      });

      feature('delete-tag', 'DELETE by tag removes only the tag', async () => {
        const repo = uniqueRepo('deltag');
        const image = await makeImage({ layers: 1 });
        await client.pushImage(repo, 'v1', image);
        assert.equal((await client.putManifest(repo, 'v2', image.manifest, image.mediaType)).status, 201);
        const del = await client.req('DELETE', `/v2/${repo}/manifests/v1`);
        assert.equal(del.status, 202, del.text());
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/v1`)).status, 404);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/v2`)).status, 200);
        assert.equal((await client.req('GET', `/v2/${repo}/manifests/${image.manifestDigest}`)).status, 200);
      });

      it('DELETE blob: 202, then 404; unknown blob 404', async () => {
        const repo = uniqueRepo('delblob');
        const data = crypto.randomBytes(100);
        assert.equal((await client.pushBlob(repo, data)).status, 201);
        const del = await client.req('DELETE', `/v2/${repo}/blobs/${sha256(data)}`);
        assert.equal(del.status, 202, del.text());
        assert.equal(await client.blobStatus(repo, sha256(data)), 404);
        const unknown = await client.req('DELETE', `/v2/${repo}/blobs/${sha256('never')}`);
        assert.equal(unknown.status, 404);
      });

      it('DELETE manifest in an unknown repository is 404', async () => {
        const res = await client.req('DELETE', `/v2/${uniqueRepo('nothing')}/manifests/${sha256('x')}`);
        assert.equal(res.status, 404);
      });
    });
  });
}
