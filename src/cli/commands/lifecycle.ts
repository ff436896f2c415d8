/** ps, logs, inspect, stop, restart, kill, rm, wait, rename, pause, unpause, container prune. */
import { ApiError, type EngineClient } from '../../client/client.js';
import { FrameReader } from '../../server/stdcopy.js';
import { humanSize, parseGoDuration } from '../../util/units.js';
import type { Command, CliContext } from '../cli.js';
import { CommandFailed } from '../cli.js';
import type { Flags } from '../flags.js';
import { type ContainerSummaryView, PS_HEADERS, PS_TABLE, containerRow, renderRows, unescapeFormat } from '../output.js';
import { Template } from '../template.js';

/** Filters as the docker CLI sends them: {"key":{"value":true}}. */
export function filtersQuery(list: string[]): string | undefined {
  if (list.length === 0) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const f of list) {
    const i = f.indexOf('=');
    if (i <= 0) throw new CommandFailed(`invalid argument "${f}" for "-f, --filter" flag: bad format of filter (expected name=value)`, 125);
    (out[f.slice(0, i)] ??= {})[f.slice(i + 1)] = true;
  }
  return JSON.stringify(out);
}

const daemonError = (err: ApiError): string => `Error response from daemon: ${err.message}`;

/**
 * Runs an action per argument, printing each name on success like Docker;
 * the daemon's errors are reported together at the end (exit 1). `skip`
 * drops an error silently (`network rm -f` of a missing network).
 */
export async function forEach(
  ctx: CliContext,
  names: string[],
  action: (name: string) => Promise<void>,
  options: { echo?: boolean; skip?: (err: ApiError) => boolean } = {},
): Promise<number> {
  const errors: string[] = [];
  for (const name of names) {
    try {
      await action(name);
      if (options.echo ?? true) ctx.out(name);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (!options.skip?.(err)) errors.push(daemonError(err));
    }
  }
  if (errors.length) throw new CommandFailed(errors.join('\n'), 1);
  return 0;
}

/**
 * `inspect` for one kind of object: each argument fetched, printed through
 * the --format template or as one JSON array, then the errors (exit 1).
 */
export async function inspectEach(
  ctx: CliContext,
  names: string[],
  fetch: (name: string) => Promise<unknown>,
  format: string,
  describe: (err: ApiError) => string = daemonError,
): Promise<number> {
  const results: unknown[] = [];
  const errors: string[] = [];
  for (const n of names) {
    try {
      results.push(await fetch(n));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors.push(describe(err));
    }
  }
  if (format) {
    const tpl = new Template(unescapeFormat(format));
    for (const r of results) ctx.out(tpl.execute(r));
  } else {
    ctx.out(JSON.stringify(results, null, 4));
  }
  if (errors.length) throw new CommandFailed(errors.join('\n'), 1);
  return 0;
}

const enc = encodeURIComponent;

const ps: Command = {
  name: 'ps',
  usage: 'ps [OPTIONS]',
  description: 'List containers',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only display container IDs' },
    { name: 'filter', short: 'f', type: 'strings', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
    { name: 'last', short: 'n', type: 'int', default: -1, description: 'Show n last created containers (includes all states)' },
    { name: 'latest', short: 'l', type: 'bool', description: 'Show the latest created container (includes all states)' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    let limit = f.int('last');
    if (f.bool('latest')) limit = 1;
    const format = f.optString('format');
    const size = f.bool('size') || (format?.includes('.Size') ?? false);
    const list = await ctx.client().json<ContainerSummaryView[]>('GET', '/containers/json', {
      query: { all: f.bool('all'), limit: limit > 0 ? limit : undefined, size, filters: filtersQuery(f.strings('filter')) },
    });
    const noTrunc = f.bool('no-trunc');
    let table = PS_TABLE;
    if (size && !format) table += '\t{{.Size}}';
    const out = renderRows(
      format,
      { defaultTable: table, headers: PS_HEADERS, rows: list.map((c) => containerRow(c, noTrunc)) },
      f.bool('quiet') ? (r) => String(r.ID) : undefined,
    );
    if (out) ctx.out(out);
    return 0;
  },
};

const logs: Command = {
  name: 'logs',
  usage: 'logs [OPTIONS] CONTAINER',
  description: 'Fetch the logs of a container',
  flags: [
    { name: 'follow', short: 'f', type: 'bool', description: 'Follow log output' },
    { name: 'tail', short: 'n', type: 'string', default: 'all', description: 'Number of lines to show from the end of the logs' },
    { name: 'timestamps', short: 't', type: 'bool', description: 'Show timestamps' },
    { name: 'since', type: 'string', description: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    { name: 'until', type: 'string', description: 'Show logs before a timestamp or relative' },
    { name: 'details', type: 'bool', description: 'Show extra details provided to logs' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const client = ctx.client();
    const info = await client.json<{ Id: string; Config: { Tty: boolean } }>('GET', `/containers/${enc(f.args[0])}/json`);
    const res = await client.stream('GET', `/containers/${info.Id}/logs`, {
      query: {
        stdout: true,
        stderr: true,
        follow: f.bool('follow'),
        tail: f.string('tail'),
        timestamps: f.bool('timestamps'),
        since: timeArg(f.string('since')),
        until: timeArg(f.string('until')),
      },
    });
    const reader = info.Config.Tty ? undefined : new FrameReader((s, d) => (s === 2 ? process.stderr : process.stdout).write(d));
    for await (const chunk of res) {
      if (reader) reader.push(chunk as Buffer);
      else process.stdout.write(chunk as Buffer);
    }
    return 0;
  },
};

/** Relative durations become unix timestamps on the client side, as in Docker. */
function timeArg(v: string): string | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return v;
  if (/^\d+(\.\d+)?(ns|us|ms|s|m|h)+/.test(v)) {
    try {
      return ((Date.now() - parseGoDuration(v)) / 1000).toFixed(9);
    } catch {
      // fall through to a timestamp
    }
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new CommandFailed(`invalid value for "since": ${v}`, 1);
  return (t / 1000).toFixed(9);
}

async function inspectOne(client: EngineClient, name: string, type: string, size: boolean): Promise<unknown> {
  const tries: [string, string][] = [];
  if (!type || type === 'container') tries.push(['container', `/containers/${enc(name)}/json`]);
  if (!type || type === 'image') tries.push(['image', `/images/${enc(name)}/json`]);
  if (!type || type === 'network') tries.push(['network', `/networks/${enc(name)}`]);
  if (!type || type === 'volume') tries.push(['volume', `/volumes/${enc(name)}`]);
  for (const [, p] of tries) {
    try {
      return await client.json('GET', p, { query: p.startsWith('/containers') && size ? { size: true } : undefined });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) continue;
      throw err;
    }
  }
  throw new ApiError(404, type ? `No such ${type}: ${name}` : `No such object: ${name}`);
}

function inspectCommand(name: string, type: string): Command {
  return {
    name,
    usage: `${name} [OPTIONS] ${type ? type.toUpperCase() : 'NAME|ID'} [${type ? type.toUpperCase() : 'NAME|ID'}...]`,
    description: 'Return low-level information on Berth objects',
    flags: [
      { name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes if the type is container' },
      ...(type ? [] : [{ name: 'type', type: 'string' as const, description: 'Return JSON for specified type' }]),
    ],
    minArgs: 1,
    async run(ctx, f) {
      const client = ctx.client();
      return inspectEach(ctx, f.args, (n) => inspectOne(client, n, type || f.string('type'), f.bool('size')), f.string('format'), (err) =>
        err.status === 404 ? `Error: ${err.message}` : daemonError(err),
      );
    },
  };
}

const stop: Command = {
  name: 'stop',
  usage: 'stop [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Stop one or more running containers',
  flags: [
    { name: 'time', short: 't', type: 'int', description: 'Seconds to wait before killing the container' },
    { name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' },
  ],
  minArgs: 1,
  async run(ctx, f) {
    const query = { t: f.changed('time') ? f.int('time') : undefined, signal: f.string('signal') || undefined };
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('POST', `/containers/${enc(n)}/stop`, { query })));
  },
};

const restart: Command = {
  ...stop,
  name: 'restart',
  usage: 'restart [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Restart one or more containers',
  async run(ctx, f) {
    const query = { t: f.changed('time') ? f.int('time') : undefined, signal: f.string('signal') || undefined };
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('POST', `/containers/${enc(n)}/restart`, { query })));
  },
};

const kill: Command = {
  name: 'kill',
  usage: 'kill [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Kill one or more running containers',
  flags: [{ name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' }],
  minArgs: 1,
  async run(ctx, f) {
    const query = { signal: f.string('signal') || undefined };
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('POST', `/containers/${enc(n)}/kill`, { query })));
  },
};

const rm: Command = {
  name: 'rm',
  usage: 'rm [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Remove one or more containers',
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Force the removal of a running container (uses SIGKILL)' },
    { name: 'volumes', short: 'v', type: 'bool', description: 'Remove anonymous volumes associated with the container' },
    { name: 'link', short: 'l', type: 'bool', description: 'Remove the specified link' },
  ],
  minArgs: 1,
  async run(ctx, f) {
    const query = { force: f.bool('force'), v: f.bool('volumes') };
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('DELETE', `/containers/${enc(n)}`, { query })));
  },
};

const wait: Command = {
  name: 'wait',
  usage: 'wait CONTAINER [CONTAINER...]',
  description: 'Block until one or more containers stop, then print their exit codes',
  flags: [],
  minArgs: 1,
  async run(ctx, f) {
    return forEach(
      ctx,
      f.args,
      async (n) => {
        const r = await ctx.client().json<{ StatusCode: number }>('POST', `/containers/${enc(n)}/wait`);
        ctx.out(String(r.StatusCode));
      },
      { echo: false },
    );
  },
};

const rename: Command = {
  name: 'rename',
  usage: 'rename CONTAINER NEW_NAME',
  description: 'Rename a container',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, f) {
    await ctx.client().call('POST', `/containers/${enc(f.args[0])}/rename`, { query: { name: f.args[1] } });
    return 0;
  },
};

function simple(name: string, description: string): Command {
  return {
    name,
    usage: `${name} CONTAINER [CONTAINER...]`,
    description,
    flags: [],
    minArgs: 1,
    async run(ctx, f) {
      return forEach(ctx, f.args, async (n) => void (await ctx.client().call('POST', `/containers/${enc(n)}/${name}`)));
    },
  };
}

export async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  ctx.out(`${question} [y/N] `);
  if (!process.stdin.isTTY) {
    const line = await new Promise<string>((resolve) => {
      let buf = '';
      process.stdin.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) resolve(buf);
      });
      process.stdin.on('end', () => resolve(buf));
    });
    process.stdin.pause();
    return /^y(es)?$/i.test(line.trim());
  }
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question('');
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

const containerPrune: Command = {
  name: 'container prune',
  usage: 'container prune [OPTIONS]',
  description: 'Remove all stopped containers',
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    if (!f.bool('force') && !(await confirm(ctx, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?'))) {
      return 0;
    }
    const r = await ctx.client().json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/containers/prune', {
      query: { filters: filtersQuery(f.strings('filter')) },
    });
    if (r.ContainersDeleted?.length) ctx.out(`Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n`);
    ctx.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}`);
    return 0;
  },
};

export const commands: Command[] = [
  ps,
  logs,
  inspectCommand('inspect', ''),
  inspectCommand('container inspect', 'container'),
  inspectCommand('image inspect', 'image'),
  stop,
  restart,
  kill,
  rm,
  wait,
  rename,
  simple('pause', 'Pause all processes within one or more containers'),
  simple('unpause', 'Unpause all processes within one or more containers'),
  containerPrune,
];

export type { Flags };
