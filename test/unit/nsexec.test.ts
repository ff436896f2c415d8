import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NsexecStartError, cgroupDirsFor, encodeRequest, parseCgroupMounts, processEnvironment } from '../../src/engine/runtime/nsexec.js';

const MOUNTINFO = [
  '25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  '30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct',
  '31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory',
  '32 25 0:29 /nested /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids',
  '33 24 0:30 / /mnt/with\\040space rw - cgroup cgroup rw,freezer',
].join('\n');

test('cgroup directories of every hierarchy, v1 (named ones too) and the unified one', () => {
  const mounts = parseCgroupMounts(MOUNTINFO);
  const dirs = cgroupDirsFor(
    ['5:freezer:/c1', '4:pids:/nested/c1', '3:memory:/c1', '2:cpu,cpuacct:/c1', '1:name=systemd:/c1', '0::/c1', ''].join('\n'),
    mounts,
  );
  assert.deepEqual(dirs, {
    v1: ['/mnt/with space/c1', '/sys/fs/cgroup/pids/c1', '/sys/fs/cgroup/memory/c1', '/sys/fs/cgroup/cpu,cpuacct/c1', '/sys/fs/cgroup/systemd/c1'],
    unified: '/sys/fs/cgroup/unified/c1',
  });
  assert.throws(() => cgroupDirsFor('7:blkio:/c1\n', mounts), /no mount for cgroup hierarchy "blkio"/);
  assert.throws(() => cgroupDirsFor('4:pids:/elsewhere/c1\n', mounts), /outside the mounted hierarchy/);
});

test('the process environment as runc builds it: later duplicates win in place, malformed entries fail', () => {
  assert.deepEqual(processEnvironment(['A=1', 'B=2', 'A=3', 'C==x']), ['A=3', 'B=2', 'C==x']);
  assert.throws(() => processEnvironment(['NOVALUE']), (e: unknown) => e instanceof NsexecStartError && /invalid environment variable: "NOVALUE"/.test(e.message));
  assert.throws(() => processEnvironment(['=x']), /environment variable name can't be empty/);
});

test('the helper request: NUL-terminated key=value entries behind a little-endian length', () => {
  const buf = encodeRequest({
    containerId: 'abc',
    stdin: false,
    context: {
      initPid: 42,
      namespaces: ['ipc', 'mnt'],
      cgroups: { v1: ['/sys/fs/cgroup/memory/abc'], unified: '/sys/fs/cgroup/unified/abc' },
      rlimits: [{ resource: 7, soft: 1024n, hard: 0xffffffffffffffffn }],
      oomScoreAdj: -5,
      seccompHex: '0600000000007f7f',
    },
    process: {
      args: ['sh', '-c', 'echo a\nb'],
      env: ['PATH=/bin', 'PATH=/usr/bin'],
      cwd: '/tmp',
      user: { uid: 1000, gid: 100, additionalGids: [10, 20] },
      capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], ambient: ['CAP_NO_SUCH'] },
      noNewPrivileges: true,
    },
  });
  assert.equal(buf.readUInt32LE(0), buf.length - 4);
  const entries = buf.subarray(4).toString().split('\0');
  assert.equal(entries.pop(), '', 'the last entry is terminated too');
  assert.deepEqual(entries, [
    'pid=42', 'id=abc', 'ns=ipc', 'ns=mnt', 'cgroup=/sys/fs/cgroup/memory/abc', 'cgroup2=/sys/fs/cgroup/unified/abc',
    'uid=1000', 'gid=100', 'groups=10,20',
    'cap.bounding=21', 'cap.effective=20', 'cap.permitted=20', 'cap.inheritable=0', 'cap.ambient=0',
    'nnp=1', 'oom=-5', 'rlimit=7:1024:18446744073709551615', 'seccomp=0600000000007f7f', 'keyring=_ses.abc', 'cwd=/tmp',
    'arg=sh', 'arg=-c', 'arg=echo a\nb', 'env=PATH=/usr/bin',
  ]);
  assert.throws(
    () => encodeRequest({ containerId: 'abc', stdin: false, context: { initPid: 1, namespaces: [], cgroups: { v1: [] }, rlimits: [] }, process: { args: ['a\0b'], env: [], cwd: '/', user: { uid: 0, gid: 0 }, capabilities: { bounding: [], effective: [], permitted: [] }, noNewPrivileges: false } }),
    /NUL byte/,
  );
});
