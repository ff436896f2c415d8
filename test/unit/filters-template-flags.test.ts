import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Filters, globMatch } from '../../src/core/filters.js';
import { Template } from '../../src/cli/template.js';
import { parseFlags, FlagError } from '../../src/cli/flags.js';
import { applyChanges, splitWords } from '../../src/core/images/changes.js';
import { parseSignal } from '../../src/core/containers/signals.js';
import { humanDuration, humanSize, parseRamBytes, parseGoDuration } from '../../src/util/units.js';
import { parsePublish, parseMount } from '../../src/cli/run-options.js';

test('filters accept both JSON shapes and AND labels', () => {
  const a = Filters.parse('{"label":{"a=b":true,"c":true},"status":{"running":true}}', ['label', 'status']);
  const b = Filters.parse('{"label":["a=b","c"],"status":["running"]}', ['label', 'status']);
  for (const f of [a, b]) {
    assert.ok(f.matchLabels({ a: 'b', c: 'x' }));
    assert.ok(!f.matchLabels({ a: 'b' }));
    assert.ok(f.matchAny('status', (s) => s === 'running'));
  }
  assert.throws(() => Filters.parse('{"bogus":["x"]}', ['label']), /invalid filter 'bogus'/);
  assert.throws(() => Filters.parse('not json', ['label']), /invalid filter/);
  assert.ok(globMatch('bu*', 'busybox'));
  assert.ok(!globMatch('bu*', 'library/busybox'));
});

test('Go template subset renders like Docker', () => {
  const data = { Name: '/web', State: { Running: true, Pid: 42 }, Config: { Labels: { 'a.b': 'c' }, Cmd: ['sh', '-c', 'x'], Env: null } };
  assert.equal(new Template('{{.Name}} {{.State.Pid}}').execute(data), '/web 42');
  assert.equal(new Template('{{json .Config.Cmd}}').execute(data), '["sh","-c","x"]');
  assert.equal(new Template('{{index .Config.Labels "a.b"}}').execute(data), 'c');
  assert.equal(new Template('{{if .State.Running}}up{{else}}down{{end}}').execute(data), 'up');
  assert.equal(new Template('{{range .Config.Cmd}}[{{.}}]{{end}}').execute(data), '[sh][-c][x]');
  assert.equal(new Template('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}').execute(data), 'a.b=c');
  assert.equal(new Template('{{.Missing}}').execute(data), '<no value>');
  assert.equal(new Template('{{.Config.Env}}').execute(data), '<nil>');
  assert.equal(new Template('{{.Config.Labels}}').execute(data), 'map[a.b:c]');
  assert.equal(new Template('{{join .Config.Cmd ","}} {{upper "x"}} {{len .Config.Cmd}}').execute(data), 'sh,-c,x X 3');
  assert.equal(new Template('{{- .Name -}}  ').execute(data), '/web');
  assert.equal(new Template('{{.Config.Cmd | json}}').execute(data), '["sh","-c","x"]');
  assert.equal(new Template('{{printf "%s-%d" .Name .State.Pid}}').execute(data), '/web-42');
  assert.throws(() => new Template('{{if .X}}'), /missing \{\{end\}\}/);
});

test('flags follow pflag: clusters, =value, bool=false, stop at first arg', () => {
  const specs = [
    { name: 'interactive', short: 'i', type: 'bool' as const, description: '' },
    { name: 'tty', short: 't', type: 'bool' as const, description: '' },
    { name: 'env', short: 'e', type: 'strings' as const, description: '' },
    { name: 'publish', short: 'p', type: 'strings' as const, description: '' },
    { name: 'rm', type: 'bool' as const, description: '' },
    { name: 'name', type: 'string' as const, description: '' },
  ];
  const f = parseFlags(['-it', '-eA=1', '--env', 'B=2', '-p8080:80', '--rm=false', '--name=x', 'img', 'cmd', '-e', 'z'], specs, false);
  assert.ok(f.bool('interactive') && f.bool('tty'));
  assert.deepEqual(f.strings('env'), ['A=1', 'B=2']);
  assert.deepEqual(f.strings('publish'), ['8080:80']);
  assert.equal(f.bool('rm'), false);
  assert.equal(f.string('name'), 'x');
  assert.deepEqual(f.args, ['img', 'cmd', '-e', 'z']);
  assert.throws(() => parseFlags(['--nope'], specs), FlagError);
  assert.throws(() => parseFlags(['--name'], specs), /needs an argument/);
});

test('change instructions build a config', () => {
  const c = applyChanges({}, ['CMD ["sh"]', 'ENV A=1 B="two words"', 'ENV C legacy value', 'EXPOSE 80 53/udp', 'LABEL x=y', 'VOLUME /data', 'WORKDIR /w', 'USER nobody', 'ENTRYPOINT echo hi']);
  assert.deepEqual(c.Cmd, ['sh']);
  assert.deepEqual(c.Env, ['A=1', 'B=two words', 'C=legacy value']);
  assert.deepEqual(Object.keys(c.ExposedPorts!), ['80/tcp', '53/udp']);
  assert.deepEqual(c.Labels, { x: 'y' });
  assert.deepEqual(Object.keys(c.Volumes!), ['/data']);
  assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', 'echo hi']);
  assert.throws(() => applyChanges({}, ['RUN x']), /not a valid change command/);
  assert.deepEqual(splitWords(`a "b c" 'd e' f\\ g`), ['a', 'b c', 'd e', 'f g']);
});

test('signals, sizes and durations parse like Docker', () => {
  assert.equal(parseSignal('TERM'), 'SIGTERM');
  assert.equal(parseSignal('9'), 'SIGKILL');
  assert.equal(parseSignal('sigusr1'), 'SIGUSR1');
  assert.throws(() => parseSignal('NOPE'), /Invalid signal/);
  assert.equal(parseRamBytes('64m'), 64 * 1024 * 1024);
  assert.equal(parseRamBytes('1g'), 1024 ** 3);
  assert.throws(() => parseRamBytes('lots'));
  assert.equal(humanSize(1983000), '1.98MB');
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(5000), '5 seconds');
  assert.equal(humanDuration(120_000), '2 minutes');
  assert.equal(parseGoDuration('1m30s'), 90_000);
});

test('publish and mount specs', () => {
  const p = parsePublish(['8080:80', '127.0.0.1::53/udp', '9000-9001:9000-9001', '5000']);
  assert.deepEqual(p.bindings['80/tcp'], [{ HostIp: '', HostPort: '8080' }]);
  assert.deepEqual(p.bindings['53/udp'], [{ HostIp: '127.0.0.1', HostPort: '' }]);
  assert.deepEqual(p.bindings['9001/tcp'], [{ HostIp: '', HostPort: '9001' }]);
  assert.deepEqual(p.bindings['5000/tcp'], [{ HostIp: '', HostPort: '' }]);
  assert.throws(() => parsePublish(['1:2:3:4']));
  const m = parseMount('type=bind,source=/a,target=/b,readonly');
  assert.deepEqual(m, { Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true });
  assert.throws(() => parseMount('type=bind,source=/a'), /target is required/);
});
