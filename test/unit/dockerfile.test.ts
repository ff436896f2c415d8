import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nameValuePairs, parseDockerfile } from '../../src/core/build/dockerfile.js';
import { processWord, processWords } from '../../src/core/build/shell-lex.js';
import { globMatch } from '../../src/core/build/glob.js';

test('parser: directives, comments, continuations, stages, flags and JSON forms', () => {
  const df = parseDockerfile(
    [
      '# escape=`',
      '# syntax=docker/dockerfile:1',
      'ARG BASE=busybox',
      '# a comment',
      'FROM $BASE AS Builder',
      'RUN echo one `',
      '  # a comment inside the continuation',
      '    two',
      'COPY --chown=1:2 --from=other a b /dst/',
      'CMD ["sh", "-c", "echo hi"]',
      '',
      'from scratch',
      'copy --from=builder /x /y',
    ].join('\n'),
  );
  assert.equal(df.escape, '`');
  assert.equal(df.globalArgs.length, 1);
  assert.equal(df.stages.length, 2);
  assert.equal(df.stages[0].name, 'builder');
  const [run, copy, cmd] = df.stages[0].instructions;
  assert.equal(run.keyword, 'RUN');
  assert.equal(run.args, 'echo one     two');
  assert.equal(run.line, 6);
  assert.equal(copy.flags.get('chown'), '1:2');
  assert.equal(copy.flags.get('from'), 'other');
  assert.equal(copy.args, 'a b /dst/');
  assert.deepEqual(cmd.json, ['sh', '-c', 'echo hi']);
  assert.equal(df.stages[1].instructions[0].keyword, 'COPY');
});

test('parser errors name the line', () => {
  assert.throws(() => parseDockerfile('FROM busybox\nFOO bar\n'), /line 2: unknown instruction: FOO/);
  assert.throws(() => parseDockerfile('RUN true\n'), /must begin with FROM/);
  assert.throws(() => parseDockerfile('FROM a\nCOPY onlyone\n'), /line 2: COPY requires at least two arguments/);
  assert.throws(() => parseDockerfile('FROM a\nRUN --mount=type=cache,target=/x true\n'), /requires BuildKit/);
  assert.throws(() => parseDockerfile('FROM a\nCOPY --bogus=1 a b\n'), /unknown flag: bogus/);
  assert.throws(() => parseDockerfile('FROM a AS x\nFROM b AS x\n'), /duplicate name x/);
  assert.throws(() => parseDockerfile('FROM a\nONBUILD ONBUILD RUN x\n'), /ONBUILD ONBUILD/);
  assert.throws(() => parseDockerfile(''), /cannot be empty/);
});

test('variable expansion: $VAR, ${VAR}, defaults, alternatives, quotes and escapes', () => {
  const env = new Map([['A', 'x'], ['EMPTY', ''], ['SP', 'a b']]);
  assert.equal(processWord('$A/${A}', env), 'x/x');
  assert.equal(processWord('${MISSING:-def} ${EMPTY:-def} ${EMPTY-def}', env), 'def def ');
  assert.equal(processWord('${A:+alt} ${MISSING:+alt}|', env), 'alt |');
  assert.equal(processWord("'$A' \"$A\" \\$A", env), '$A x $A');
  assert.deepEqual(processWords('$SP "c d" e', env), ['a', 'b', 'c d', 'e']);
  assert.throws(() => processWord('${A', env), /missing '}'/);
  assert.throws(() => processWord('${MISSING:?must be set}', env), /MISSING: must be set/);
  assert.equal(processWord('`$A', env, '`'), '$A');
});

test('ENV/LABEL pairs: new and legacy forms', () => {
  assert.deepEqual(nameValuePairs('A=1 B="two words"', 'ENV'), [['A', '1'], ['B', '"two words"']]);
  assert.deepEqual(nameValuePairs('KEY a value with spaces', 'ENV'), [['KEY', 'a value with spaces']]);
  assert.deepEqual(nameValuePairs('NAME', 'ARG'), [['NAME', '']]);
  assert.throws(() => nameValuePairs('A=1 B', 'ENV'), /can't find =/);
});

test("globs follow Go's filepath.Match", () => {
  assert.ok(globMatch('*.txt', 'a.txt'));
  assert.ok(!globMatch('*.txt', 'dir/a.txt'));
  assert.ok(globMatch('file?.md', 'file1.md'));
  assert.ok(globMatch('[a-c]*', 'banana'));
  assert.ok(!globMatch('[^a-c]*', 'banana'));
  assert.ok(globMatch('\\*', '*'));
  assert.throws(() => globMatch('[a-', 'a'), /syntax error in pattern/);
});
