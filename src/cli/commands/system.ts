/** version, info, events, system df. */
import { BERTH_VERSION } from '../../api/version.js';
import { humanSize } from '../../util/units.js';
import type { Command } from '../cli.js';
import { Template } from '../template.js';
import { unescapeFormat } from '../output.js';
import { filtersQuery } from './lifecycle.js';
import { forEachJsonLine } from '../../client/json-lines.js';

const version: Command = {
  name: 'version',
  usage: 'version [OPTIONS]',
  description: 'Show the Berth version information',
  flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  maxArgs: 0,
  async run(ctx, f) {
    const client = { Version: BERTH_VERSION, ApiVersion: ctx.client().apiVersion, Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch, NodeVersion: process.version };
    let server: Record<string, unknown> | undefined;
    let serverError: unknown;
    try {
      server = await ctx.client().json<Record<string, unknown>>('GET', '/version');
    } catch (err) {
      serverError = err;
    }
    if (f.string('format')) {
      ctx.out(new Template(unescapeFormat(f.string('format'))).execute({ Client: client, Server: server ?? null }));
    } else {
      const lines = [
        'Client:',
        ` Version:           ${client.Version}`,
        ` API version:       ${client.ApiVersion}`,
        ` Node version:      ${client.NodeVersion}`,
        ` OS/Arch:           ${client.Os}/${client.Arch}`,
      ];
      if (server) {
        lines.push('', `Server: ${String((server.Platform as { Name?: string })?.Name ?? '')}`);
        for (const c of (server.Components as { Name: string; Version: string; Details?: Record<string, string> }[]) ?? []) {
          lines.push(` ${c.Name}:`, `  Version:          ${c.Version}`);
          if (c.Details?.ApiVersion) lines.push(`  API version:      ${c.Details.ApiVersion} (minimum version ${c.Details.MinAPIVersion})`);
          if (c.Details?.Os) lines.push(`  OS/Arch:          ${c.Details.Os}/${c.Details.Arch}`);
        }
      }
      ctx.out(lines.join('\n'));
    }
    if (serverError) throw serverError;
    return 0;
  },
};

const info: Command = {
  name: 'info',
  usage: 'info [OPTIONS]',
  description: 'Display system-wide information',
  flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  maxArgs: 0,
  async run(ctx, f) {
    const i = await ctx.client().json<Record<string, unknown>>('GET', '/info');
    if (f.string('format')) {
      ctx.out(new Template(unescapeFormat(f.string('format'))).execute(i));
      return 0;
    }
    const lines = [
      'Server:',
      ` Containers: ${i.Containers}`,
      `  Running: ${i.ContainersRunning}`,
      `  Paused: ${i.ContainersPaused}`,
      `  Stopped: ${i.ContainersStopped}`,
      ` Images: ${i.Images}`,
      ` Server Version: ${i.ServerVersion}`,
      ` Storage Driver: ${i.Driver}`,
      ` Logging Driver: ${i.LoggingDriver}`,
      ` Cgroup Driver: ${i.CgroupDriver}`,
      ` Cgroup Version: ${i.CgroupVersion}`,
      ` Runtimes: runc`,
      ` Default Runtime: ${i.DefaultRuntime}`,
      ` Init Binary: ${i.InitBinary}`,
      ` Security Options:`,
      ...((i.SecurityOptions as string[]) ?? []).map((s) => `  ${s}`),
      ` Kernel Version: ${i.KernelVersion}`,
      ` Operating System: ${i.OperatingSystem}`,
      ` OSType: ${i.OSType}`,
      ` Architecture: ${i.Architecture}`,
      ` CPUs: ${i.NCPU}`,
      ` Total Memory: ${humanSize(Number(i.MemTotal))}`,
      ` Name: ${i.Name}`,
      ` ID: ${i.ID}`,
      ` Berth Root Dir: ${i.DockerRootDir}`,
      ` Live Restore Enabled: ${i.LiveRestoreEnabled}`,
    ];
    ctx.out(lines.join('\n'));
    for (const w of (i.Warnings as string[]) ?? []) ctx.err(w);
    return 0;
  },
};

const events: Command = {
  name: 'events',
  usage: 'events [OPTIONS]',
  description: 'Get real time events from the server',
  flags: [
    { name: 'filter', short: 'f', type: 'strings', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
    { name: 'since', type: 'string', description: 'Show all events created since timestamp' },
    { name: 'until', type: 'string', description: 'Stream events until this timestamp' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    const client = ctx.client();
    const res = await client.stream('GET', '/events', {
      query: { filters: filtersQuery(f.strings('filter')), since: f.string('since') || undefined, until: f.string('until') || undefined },
    });
    const tpl = f.string('format') ? new Template(unescapeFormat(f.string('format') === 'json' ? '{{json .}}' : f.string('format'))) : undefined;
    type Event = { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number };
    await forEachJsonLine<Event>(res, (e) => {
        if (tpl) {
          ctx.out(tpl.execute(e));
          return;
        }
        const ts = new Date(Math.floor(e.timeNano / 1e6)).toISOString().replace('Z', '') + String(e.timeNano % 1e6).padStart(6, '0') + 'Z';
        const attrs = Object.keys(e.Actor.Attributes)
          .sort()
          .map((k) => `${k}=${e.Actor.Attributes[k]}`)
          .join(', ');
        ctx.out(`${ts.replace(/\.(\d{3})\d{6}Z$/, (_m, ms) => `.${ms}`)}${''} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}`);
    });
    return 0;
  },
};

const systemDf: Command = {
  name: 'system df',
  usage: 'system df [OPTIONS]',
  description: 'Show docker disk usage',
  flags: [{ name: 'verbose', short: 'v', type: 'bool', description: 'Show detailed information on space usage' }],
  maxArgs: 0,
  async run(ctx) {
    const df = await ctx.client().json<{ LayersSize: number; Images: { Containers: number; Size: number }[]; Containers: { State: string; SizeRw?: number }[]; Volumes: { UsageData?: { Size: number; RefCount: number } }[] }>(
      'GET',
      '/system/df',
    );
    const rows = [
      'TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE',
      `Images\t${df.Images.length}\t${df.Images.filter((i) => i.Containers > 0).length}\t${humanSize(df.LayersSize)}\t${humanSize(df.Images.filter((i) => i.Containers === 0).reduce((n, i) => n + i.Size, 0))}`,
      `Containers\t${df.Containers.length}\t${df.Containers.filter((c) => c.State === 'running').length}\t${humanSize(df.Containers.reduce((n, c) => n + (c.SizeRw ?? 0), 0))}\t${humanSize(df.Containers.filter((c) => c.State !== 'running').reduce((n, c) => n + (c.SizeRw ?? 0), 0))}`,
      `Local Volumes\t${df.Volumes.length}\t${df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length}\t${humanSize(df.Volumes.reduce((n, v) => n + Math.max(0, v.UsageData?.Size ?? 0), 0))}\t0B`,
      `Build Cache\t0\t0\t0B\t0B`,
    ];
    const { tabulate } = await import('../output.js');
    ctx.out(tabulate(rows));
    return 0;
  },
};

export const commands: Command[] = [version, info, events, systemDf];
