/** Commands that change a container or make an image of it: update, commit. */
import type { HostConfig } from '../../api/types.js';
import type { Command } from '../cli.js';
import { UsageError, parseRestart, parseSize } from '../run-options.js';

const enc = encodeURIComponent;

const update: Command = {
  name: 'update',
  usage: 'update [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Update configuration of one or more containers',
  flags: [
    { name: 'blkio-weight', type: 'int', description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable' },
    { name: 'cpu-period', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
    { name: 'cpu-quota', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
    { name: 'cpu-rt-period', type: 'int', description: 'Limit the CPU real-time period in microseconds' },
    { name: 'cpu-rt-runtime', type: 'int', description: 'Limit the CPU real-time runtime in microseconds' },
    { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
    { name: 'cpus', type: 'string', description: 'Number of CPUs' },
    { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
    { name: 'cpuset-mems', type: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
    { name: 'memory', short: 'm', type: 'string', description: 'Memory limit' },
    { name: 'memory-reservation', type: 'string', description: 'Memory soft limit' },
    { name: 'memory-swap', type: 'string', description: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
    { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
    { name: 'restart', type: 'string', description: 'Restart policy to apply when a container exits' },
  ],
  minArgs: 1,
  async run(ctx, f) {
    const body: Partial<HostConfig> = {};
    const ints: [string, keyof HostConfig][] = [
      ['blkio-weight', 'BlkioWeight'],
      ['cpu-period', 'CpuPeriod'],
      ['cpu-quota', 'CpuQuota'],
      ['cpu-rt-period', 'CpuRealtimePeriod'],
      ['cpu-rt-runtime', 'CpuRealtimeRuntime'],
      ['cpu-shares', 'CpuShares'],
      ['pids-limit', 'PidsLimit'],
    ];
    for (const [flag, key] of ints) if (f.changed(flag)) (body as Record<string, unknown>)[key] = f.int(flag);
    if (f.changed('cpuset-cpus')) body.CpusetCpus = f.string('cpuset-cpus');
    if (f.changed('cpuset-mems')) body.CpusetMems = f.string('cpuset-mems');
    if (f.changed('memory')) body.Memory = parseSize(f.string('memory'), 'memory');
    if (f.changed('memory-reservation')) body.MemoryReservation = parseSize(f.string('memory-reservation'), 'memory-reservation');
    if (f.changed('memory-swap')) body.MemorySwap = f.string('memory-swap') === '-1' ? -1 : parseSize(f.string('memory-swap'), 'memory-swap');
    if (f.changed('cpus')) {
      const n = Number(f.string('cpus'));
      if (Number.isNaN(n)) throw new UsageError(`invalid argument "${f.string('cpus')}" for "--cpus" flag: failed to parse ${f.string('cpus')} as a rational number`);
      body.NanoCpus = Math.round(n * 1e9);
    }
    if (f.changed('restart')) body.RestartPolicy = parseRestart(f.string('restart'));
    if (Object.keys(body).length === 0) throw new UsageError('you must provide one or more flags when using this command');

    const errors: string[] = [];
    for (const name of f.args) {
      try {
        const r = await ctx.client().json<{ Warnings: string[] | null }>('POST', `/containers/${enc(name)}/update`, { body });
        for (const w of r?.Warnings ?? []) ctx.err(w);
        ctx.out(name);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) {
      ctx.err(errors.join('\n'));
      return 1;
    }
    return 0;
  },
};

const commit: Command = {
  name: 'commit',
  usage: 'commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  description: "Create a new image from a container's changes",
  flags: [
    { name: 'author', short: 'a', type: 'string', description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { name: 'change', short: 'c', type: 'strings', description: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', description: 'Commit message' },
    { name: 'pause', short: 'p', type: 'bool', default: true, description: 'Pause container during commit' },
  ],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, f) {
    const query: Record<string, string | string[] | boolean | undefined> = {
      container: f.args[0],
      comment: f.string('message') || undefined,
      author: f.string('author') || undefined,
      changes: f.strings('change'),
      pause: f.bool('pause'),
    };
    if (f.args[1]) {
      // REPOSITORY[:TAG]: the tag is after the last colon that is not part of a registry host:port
      const ref = f.args[1];
      const slash = ref.lastIndexOf('/');
      const colon = ref.lastIndexOf(':');
      if (colon > slash) {
        query.repo = ref.slice(0, colon);
        query.tag = ref.slice(colon + 1);
      } else {
        query.repo = ref;
      }
    }
    const r = await ctx.client().json<{ Id: string }>('POST', '/commit', { query });
    ctx.out(r.Id);
    return 0;
  },
};

export const commands: Command[] = [update, commit];
