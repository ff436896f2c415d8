/** Unit tests of the registry's pure parts: grammar, ranges, manifests, access rules, tokens, usage tracking, config. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { AccessPolicy, parseScope } from '../../src/registry/auth/access.js';
import { Htpasswd } from '../../src/registry/auth/htpasswd.js';
import { TokenSigner, tokenCovers } from '../../src/registry/auth/token.js';
import { parseAddr, parseDuration } from '../../src/registry/config.js';
import { RegistryError, toHttpError } from '../../src/registry/errors.js';
import { parseRange } from '../../src/registry/http/handlers/blobs.js';
import { matchRoute } from '../../src/registry/http/routes.js';
import { parseManifest, referrerDescriptor } from '../../src/registry/manifests.js';
import { isRepositoryName, isTag, parseReference } from '../../src/registry/names.js';
import { UsageTracker } from '../../src/registry/storage/usage.js';
import { notFound } from '../../src/core/errdefs/index.js';
import bcrypt from 'bcryptjs';

const D = (s: string): string => `sha256:${crypto.createHash('sha256').update(s).digest('hex')}`;

describe('names', () => {
  it('follows the spec grammar for repository names', () => {
    for (const ok of ['a', 'library/ubuntu', 'a.b_c__d--e/f', 'x/y/z', '0']) assert.ok(isRepositoryName(ok), ok);
    for (const bad of ['', 'A', 'a/', '/a', 'a//b', 'a..b', '-a', 'a-', 'a/_b', 'a___b', 'a'.repeat(256), 'a b']) assert.ok(!isRepositoryName(bad), bad);
  });
  it('follows the spec grammar for tags and references', () => {
    assert.ok(isTag('v1.0_rc-1'));
    assert.ok(!isTag('.hidden'));
    assert.ok(!isTag('-x'));
    assert.ok(!isTag('a'.repeat(129)));
    assert.deepEqual(parseReference('latest'), { kind: 'tag', tag: 'latest' });
    assert.equal(parseReference(D('x')).kind, 'digest');
    assert.throws(() => parseReference('sha256:short'), (e: RegistryError) => e.code === 'DIGEST_INVALID');
    assert.throws(() => parseReference(`sha512:${'a'.repeat(128)}`), /unsupported digest algorithm/);
  });
  it('routes names with slashes and refuses bad names', () => {
    assert.deepEqual(matchRoute('/v2/a/b/c/manifests/latest'), { kind: 'manifest', name: 'a/b/c', param: 'latest' });
    assert.deepEqual(matchRoute('/v2/a/blobs/uploads/'), { kind: 'uploads', name: 'a', param: '' });
    assert.equal(matchRoute('/v2/a/blobs/uploads/u-1')?.kind, 'upload');
    assert.equal(matchRoute('/v2/a/tags/list')?.kind, 'tags');
    assert.equal(matchRoute('/v3/x'), undefined);
    assert.throws(() => matchRoute('/v2/Bad/tags/list'), (e: RegistryError) => e.code === 'NAME_INVALID' && e.status === 400);
  });
});

describe('ranges', () => {
  it('parses single byte ranges', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange(undefined, 100), undefined);
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined, 'multi-range: serve it all');
    assert.equal(parseRange('items=0-1', 100), undefined);
  });
});

describe('manifests', () => {
  const desc = (s: string, mediaType = 'application/octet-stream'): object => ({ mediaType, digest: D(s), size: s.length });
  it('takes the media type from Content-Type or the body and refuses a mismatch', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: desc('c'), layers: [desc('l')] }));
    assert.equal(parseManifest(body, undefined).mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(parseManifest(body, 'application/vnd.oci.image.manifest.v1+json; charset=utf-8').blobs.length, 2);
    assert.throws(() => parseManifest(body, 'application/vnd.docker.distribution.manifest.v2+json'), /does not match/);
  });
  it('refuses what is not a manifest', () => {
    for (const bad of ['not json', '[]', '{"schemaVersion":1}', '{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1}}']) {
      assert.throws(() => parseManifest(Buffer.from(bad), 'application/vnd.oci.image.manifest.v1+json'), (e: RegistryError) => e.code === 'MANIFEST_INVALID', bad);
    }
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), /unsupported manifest media type/);
  });
  it('lists the children of an index and describes referrers as the spec says', () => {
    const index = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [desc('m1'), desc('m2')] })), 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.isIndex, true);
    assert.equal(index.manifests.length, 2);
    const art = parseManifest(
      Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc('c', 'application/vnd.example.config'), layers: [], subject: desc('s'), annotations: { a: 'b' } })),
      'application/vnd.oci.image.manifest.v1+json',
    );
    assert.deepEqual(referrerDescriptor(art, D('x') as `sha256:${string}`, 10), {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: D('x'),
      size: 10,
      artifactType: 'application/vnd.example.config',
      annotations: { a: 'b' },
    });
  });
});

describe('access and tokens', () => {
  it('grants by account and repository pattern', () => {
    const policy = new AccessPolicy(
      [
        { account: 'alice', repository: 'alice/*', actions: ['pull', 'push'] },
        { account: '*', repository: 'public/*', actions: ['pull'] },
      ],
      true,
    );
    assert.deepEqual(policy.granted('alice', parseScope('repository:alice/x/y:pull,push,delete')!), ['pull', 'push']);
    assert.deepEqual(policy.granted('bob', parseScope('repository:alice/x:pull')!), []);
    assert.deepEqual(policy.granted('bob', parseScope('repository:public/x:pull,push')!), ['pull']);
    assert.deepEqual(policy.granted('anonymous', parseScope('repository:anything:pull,push')!), ['pull']);
    assert.equal(parseScope('repository:a'), undefined);
  });
  it('signs, verifies and rejects tampered or expired tokens', () => {
    const signer = new TokenSigner(crypto.randomBytes(32), 'iss', 'svc');
    const { token } = signer.issue('access', 'alice', 60, [{ type: 'repository', name: 'a', actions: ['pull'] }]);
    const claims = signer.verify(token, 'access');
    assert.equal(claims?.sub, 'alice');
    assert.ok(tokenCovers(claims!.access, { type: 'repository', name: 'a', actions: ['pull'] }));
    assert.ok(!tokenCovers(claims!.access, { type: 'repository', name: 'a', actions: ['push'] }));
    assert.equal(signer.verify(token, 'refresh'), undefined);
    assert.equal(new TokenSigner(crypto.randomBytes(32), 'iss', 'svc').verify(token, 'access'), undefined);
    assert.equal(new TokenSigner(crypto.randomBytes(32), 'iss', 'other').verify(token, 'access'), undefined);
    assert.equal(signer.verify(signer.issue('access', 'a', -1).token, 'access'), undefined);
  });
  it('reads htpasswd bcrypt entries ($2y$ from htpasswd -B) and refuses other hashes', async () => {
    const file = Htpasswd.parse(`# users\nalice:${bcrypt.hashSync('pw', 4).replace('$2b$', '$2y$')}\n`);
    assert.equal(await file.verify('alice', 'pw'), true);
    assert.equal(await file.verify('alice', 'nope'), false);
    assert.equal(await file.verify('bob', 'pw'), false);
    assert.throws(() => Htpasswd.parse('carol:{SHA}abc='), /no bcrypt hash/);
  });
});

describe('usage tracking', () => {
  it('a use before deletion keeps the item; a use during deletion waits for it', async () => {
    const usage = new UsageTracker();
    const since = Date.now();
    usage.use('a');
    assert.equal(await usage.deleteUnlessUsed('a', since, async () => undefined), false);
    let release!: () => void;
    const removing = new Promise<void>((r) => (release = r));
    const deletion = usage.deleteUnlessUsed('b', since, () => removing);
    const waiter = usage.use('b');
    assert.ok(waiter !== undefined, 'the user must wait for the deletion in progress');
    let waited = false;
    const done = waiter.then(() => (waited = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(waited, false);
    release();
    assert.equal(await deletion, true);
    await done;
    assert.equal(waited, true);
  });
});

describe('usage tracking memory', () => {
  it('drops old records past a threshold, but never those a running collection needs', async () => {
    const pruning = new UsageTracker(0);
    for (let i = 0; i < 60_000; i++) pruning.use(`a${i}`);
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 60_000; i++) pruning.use(`b${i}`);
    assert.ok(pruning.size < 120_000, `size ${pruning.size}`);
    const held = new UsageTracker(0);
    held.hold(Date.now() - 60_000);
    for (let i = 0; i < 60_000; i++) held.use(`a${i}`);
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 60_000; i++) held.use(`b${i}`);
    assert.equal(held.size, 120_000);
  });
});

describe('config and errors', () => {
  it('parses durations and addresses', () => {
    assert.equal(parseDuration('90s', 'x'), 90_000);
    assert.equal(parseDuration('1.5h', 'x'), 5_400_000);
    assert.equal(parseDuration('0', 'x'), 0);
    assert.throws(() => parseDuration('10', 'x'), /needs a unit/);
    assert.deepEqual(parseAddr('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseAddr('[::1]:5000'), { host: '::1', port: 5000 });
    assert.throws(() => parseAddr('nohost'), /HOST:PORT/);
  });
  it('maps every error to a status and an OCI body in one place', () => {
    assert.equal(toHttpError(new RegistryError('BLOB_UNKNOWN')).status, 404);
    assert.equal(toHttpError(new RegistryError('RANGE_INVALID')).status, 416);
    assert.deepEqual(toHttpError(notFound('x')).body.errors[0]!.code, 'NAME_UNKNOWN');
    const internal = toHttpError(new Error('boom'));
    assert.equal(internal.status, 500);
    assert.equal(internal.internal, true);
  });
});
