import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarString, parseReference, referenceString, withDefaultTag } from '../../src/core/images/reference.js';
import { chainIDs, sha256Digest } from '../../src/core/images/digest.js';

test('short names normalise to docker.io/library with latest', () => {
  const r = withDefaultTag(parseReference('busybox'));
  assert.equal(referenceString(r), 'docker.io/library/busybox:latest');
  assert.equal(familiarString(r), 'busybox:latest');
});

test('registries with ports, localhost and digests keep their parts', () => {
  assert.equal(referenceString(parseReference('localhost:5000/app:1.0')), 'localhost:5000/app:1.0');
  assert.equal(referenceString(parseReference('localhost/app')), 'localhost/app');
  assert.equal(referenceString(parseReference('quay.io/org/img:tag')), 'quay.io/org/img:tag');
  assert.equal(referenceString(parseReference('user/img')), 'docker.io/user/img');
  const d = `sha256:${'a'.repeat(64)}`;
  const r = parseReference(`127.0.0.1:5000/x@${d}`);
  assert.equal(r.digest, d);
  assert.equal(r.domain, '127.0.0.1:5000');
  assert.equal(familiarString(parseReference('index.docker.io/library/alpine:3')), 'alpine:3');
});

test('invalid references are refused with Docker messages', () => {
  assert.throws(() => parseReference('UPPER'), /must be lowercase/);
  assert.throws(() => parseReference('a b'), /invalid reference format/);
  assert.throws(() => parseReference(''), /invalid reference format/);
  assert.throws(() => parseReference('a:'), /invalid reference format/);
  assert.throws(() => parseReference('a'.repeat(64).replace(/a/g, 'b')), /64-byte hexadecimal/);
  assert.throws(() => parseReference('x@sha256:abc'), /invalid reference format/);
});

test('chain IDs follow the OCI definition', () => {
  const a = sha256Digest('a');
  const b = sha256Digest('b');
  const chain = chainIDs([a, b]);
  assert.equal(chain[0], a);
  assert.equal(chain[1], sha256Digest(`${a} ${b}`));
});
