/** volume create/ls/inspect/rm/prune. */
import { humanSize } from '../../util/units.js';
import type { Command } from '../cli.js';
import { renderRows } from '../output.js';
import { confirm, filtersQuery, forEach, inspectEach } from './lifecycle.js';

const enc = encodeURIComponent;

interface VolumeView {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Labels: Record<string, string> | null;
  Scope: string;
}

function keyValues(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}

const create: Command = {
  name: 'volume create',
  usage: 'volume create [OPTIONS] [VOLUME]',
  description: 'Create a volume',
  flags: [
    { name: 'driver', short: 'd', type: 'string', default: 'local', description: 'Specify volume driver name' },
    { name: 'label', type: 'strings', description: 'Set metadata for a volume' },
    { name: 'opt', short: 'o', type: 'strings', description: 'Set driver specific options' },
    { name: 'name', type: 'string', description: 'Specify volume name', hidden: true },
  ],
  maxArgs: 1,
  async run(ctx, f) {
    const name = f.args[0] ?? f.string('name');
    const v = await ctx.client().json<VolumeView>('POST', '/volumes/create', {
      body: { Name: name || undefined, Driver: f.string('driver'), DriverOpts: keyValues(f.strings('opt')), Labels: keyValues(f.strings('label')) },
    });
    ctx.out(v.Name);
    return 0;
  },
};

const ls: Command = {
  name: 'volume ls',
  usage: 'volume ls [OPTIONS]',
  description: 'List volumes',
  flags: [
    { name: 'filter', short: 'f', type: 'strings', description: 'Provide filter values (e.g. "dangling=true")' },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only display volume names' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    const r = await ctx.client().json<{ Volumes: VolumeView[] | null }>('GET', '/volumes', { query: { filters: filtersQuery(f.strings('filter')) } });
    const rows = (r.Volumes ?? []).map((v) => ({
      Name: v.Name,
      Driver: v.Driver,
      Scope: v.Scope,
      Mountpoint: v.Mountpoint,
      Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','),
      Label: (k: string) => v.Labels?.[k] ?? '',
    }));
    const out = renderRows(
      f.optString('format'),
      { defaultTable: 'table {{.Driver}}\t{{.Name}}', headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS' }, rows },
      f.bool('quiet') ? (x) => String(x.Name) : undefined,
    );
    if (out) ctx.out(out);
    return 0;
  },
};

const inspect: Command = {
  name: 'volume inspect',
  usage: 'volume inspect [OPTIONS] VOLUME [VOLUME...]',
  description: 'Display detailed information on one or more volumes',
  flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  minArgs: 1,
  run(ctx, f) {
    return inspectEach(ctx, f.args, (n) => ctx.client().json('GET', `/volumes/${enc(n)}`), f.string('format'));
  },
};

const rm: Command = {
  name: 'volume rm',
  usage: 'volume rm [OPTIONS] VOLUME [VOLUME...]',
  description: 'Remove one or more volumes',
  flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the removal of one or more volumes' }],
  minArgs: 1,
  run(ctx, f) {
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('DELETE', `/volumes/${enc(n)}`, { query: { force: f.bool('force') } })));
  },
};

const prune: Command = {
  name: 'volume prune',
  usage: 'volume prune [OPTIONS]',
  description: 'Remove unused local volumes',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused volumes, not just anonymous ones' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "label=<label>")' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    if (!f.bool('force') && !(await confirm(ctx, 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?'))) {
      return 0;
    }
    const filters = [...f.strings('filter')];
    if (f.bool('all')) filters.push('all=true');
    const r = await ctx.client().json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/volumes/prune', { query: { filters: filtersQuery(filters) } });
    if (r.VolumesDeleted?.length) ctx.out(`Deleted Volumes:\n${r.VolumesDeleted.join('\n')}\n`);
    ctx.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}`);
    return 0;
  },
};

export const commands: Command[] = [create, ls, inspect, rm, prune];
