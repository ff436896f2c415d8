/** network create/ls/inspect/rm/prune/connect/disconnect, and port. */
import type { Command } from '../cli.js';
import { CommandFailed } from '../cli.js';
import { renderRows } from '../output.js';
import { confirm, filtersQuery, forEach, inspectEach } from './lifecycle.js';

const enc = encodeURIComponent;

function keyValues(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0 && what !== 'label') throw new CommandFailed(`invalid ${what}: ${kv} (expected key=value)`, 125);
    out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}

const create: Command = {
  name: 'network create',
  usage: 'network create [OPTIONS] NETWORK',
  description: 'Create a network',
  flags: [
    { name: 'driver', short: 'd', type: 'string', default: 'bridge', description: 'Driver to manage the Network' },
    { name: 'subnet', type: 'strings', description: 'Subnet in CIDR format that represents a network segment' },
    { name: 'gateway', type: 'strings', description: 'IPv4 or IPv6 Gateway for the master subnet' },
    { name: 'ip-range', type: 'strings', description: 'Allocate container ip from a sub-range' },
    { name: 'internal', type: 'bool', description: 'Restrict external access to the network' },
    { name: 'attachable', type: 'bool', description: 'Enable manual container attachment' },
    { name: 'ipv6', type: 'bool', description: 'Enable IPv6 networking' },
    { name: 'label', type: 'strings', description: 'Set metadata on a network' },
    { name: 'opt', short: 'o', type: 'strings', description: 'Set driver specific options' },
    { name: 'ipam-driver', type: 'string', description: 'IP Address Management Driver' },
    { name: 'ipam-opt', type: 'strings', description: 'Set IPAM driver specific options' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const subnets = f.strings('subnet');
    const config = subnets.map((s, i) => ({
      Subnet: s,
      ...(f.strings('gateway')[i] ? { Gateway: f.strings('gateway')[i] } : {}),
      ...(f.strings('ip-range')[i] ? { IPRange: f.strings('ip-range')[i] } : {}),
    }));
    if (subnets.length === 0 && (f.strings('gateway').length || f.strings('ip-range').length)) {
      throw new CommandFailed('berth: every ip-range or gateway must have a corresponding subnet', 125);
    }
    const r = await ctx.client().json<{ Id: string }>('POST', '/networks/create', {
      body: {
        Name: f.args[0],
        Driver: f.string('driver'),
        Internal: f.bool('internal'),
        Attachable: f.bool('attachable'),
        EnableIPv6: f.bool('ipv6'),
        IPAM: { Driver: f.string('ipam-driver') || 'default', Config: config, Options: keyValues(f.strings('ipam-opt'), 'ipam-opt') },
        Options: keyValues(f.strings('opt'), 'opt'),
        Labels: keyValues(f.strings('label'), 'label'),
      },
    });
    ctx.out(r.Id);
    return 0;
  },
};

const ls: Command = {
  name: 'network ls',
  usage: 'network ls [OPTIONS]',
  description: 'List networks',
  flags: [
    { name: 'filter', short: 'f', type: 'strings', description: 'Provide filter values (e.g. "driver=bridge")' },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only display network IDs' },
    { name: 'no-trunc', type: 'bool', description: 'Do not truncate the output' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    const list = await ctx.client().json<{ Id: string; Name: string; Driver: string; Scope: string; Internal: boolean; Created: string; Labels: Record<string, string> }[]>(
      'GET',
      '/networks',
      { query: { filters: filtersQuery(f.strings('filter')) } },
    );
    const rows = list.map((n) => ({
      ID: f.bool('no-trunc') ? n.Id : n.Id.slice(0, 12),
      Name: n.Name,
      Driver: n.Driver,
      Scope: n.Scope,
      Internal: String(n.Internal),
      IPv6: 'false',
      CreatedAt: n.Created,
      Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
      Label: (k: string) => n.Labels?.[k] ?? '',
    }));
    const out = renderRows(
      f.optString('format'),
      {
        defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
        headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', Internal: 'INTERNAL', IPv6: 'IPV6', CreatedAt: 'CREATED', Labels: 'LABELS' },
        rows,
      },
      f.bool('quiet') ? (r) => String(r.ID) : undefined,
    );
    if (out) ctx.out(out);
    return 0;
  },
};

const inspect: Command = {
  name: 'network inspect',
  usage: 'network inspect [OPTIONS] NETWORK [NETWORK...]',
  description: 'Display detailed information on one or more networks',
  flags: [
    { name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' },
    { name: 'verbose', short: 'v', type: 'bool', description: 'Verbose output for diagnostics' },
  ],
  minArgs: 1,
  run(ctx, f) {
    return inspectEach(ctx, f.args, (n) => ctx.client().json('GET', `/networks/${enc(n)}`), f.string('format'));
  },
};

const rm: Command = {
  name: 'network rm',
  usage: 'network rm NETWORK [NETWORK...]',
  description: 'Remove one or more networks',
  flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not error if the network does not exist' }],
  minArgs: 1,
  run(ctx, f) {
    return forEach(ctx, f.args, async (n) => void (await ctx.client().call('DELETE', `/networks/${enc(n)}`)), {
      skip: (err) => f.bool('force') && err.status === 404,
    });
  },
};

const prune: Command = {
  name: 'network prune',
  usage: 'network prune [OPTIONS]',
  description: 'Remove all unused networks',
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    if (!f.bool('force') && !(await confirm(ctx, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?'))) {
      return 0;
    }
    const r = await ctx.client().json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', { query: { filters: filtersQuery(f.strings('filter')) } });
    if (r.NetworksDeleted?.length) ctx.out(`Deleted Networks:\n${r.NetworksDeleted.join('\n')}`);
    return 0;
  },
};

const connect: Command = {
  name: 'network connect',
  usage: 'network connect [OPTIONS] NETWORK CONTAINER',
  description: 'Connect a container to a network',
  flags: [
    { name: 'alias', type: 'strings', description: 'Add network-scoped alias for the container' },
    { name: 'ip', type: 'string', description: 'IPv4 address (e.g., "172.30.100.104")' },
    { name: 'link', type: 'strings', description: 'Add link to another container' },
  ],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, f) {
    await ctx.client().call('POST', `/networks/${enc(f.args[0])}/connect`, {
      body: {
        Container: f.args[1],
        EndpointConfig: { Aliases: f.strings('alias'), ...(f.string('ip') ? { IPAMConfig: { IPv4Address: f.string('ip') } } : {}), Links: f.strings('link') },
      },
    });
    return 0;
  },
};

const disconnect: Command = {
  name: 'network disconnect',
  usage: 'network disconnect [OPTIONS] NETWORK CONTAINER',
  description: 'Disconnect a container from a network',
  flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the container to disconnect from a network' }],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, f) {
    await ctx.client().call('POST', `/networks/${enc(f.args[0])}/disconnect`, { body: { Container: f.args[1], Force: f.bool('force') } });
    return 0;
  },
};

const port: Command = {
  name: 'port',
  usage: 'port CONTAINER [PRIVATE_PORT[/PROTO]]',
  description: 'List port mappings or a specific mapping for the container',
  flags: [],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, f) {
    const c = await ctx.client().json<{ NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> } }>(
      'GET',
      `/containers/${enc(f.args[0])}/json`,
    );
    const ports = c.NetworkSettings.Ports ?? {};
    if (f.args[1]) {
      const key = f.args[1].includes('/') ? f.args[1] : `${f.args[1]}/tcp`;
      const bindings = ports[key];
      if (!bindings?.length) throw new CommandFailed(`Error: No public port '${key}' published for ${f.args[0]}`, 1);
      for (const b of bindings) ctx.out(`${b.HostIp}:${b.HostPort}`);
      return 0;
    }
    const lines: string[] = [];
    for (const key of Object.keys(ports).sort((a, b) => parseInt(a, 10) - parseInt(b, 10))) {
      for (const b of ports[key] ?? []) lines.push(`${key} -> ${b.HostIp}:${b.HostPort}`);
    }
    if (lines.length) ctx.out(lines.join('\n'));
    return 0;
  },
};

export const commands: Command[] = [create, ls, inspect, rm, prune, connect, disconnect, port];
