/**
 * The /etc/hostname, /etc/hosts and /etc/resolv.conf a container sees: files
 * in its state directory, bind-mounted at start, as Docker does. They are
 * rewritten at every start, so a torn write after a crash is harmless and
 * they need no fsync on the start path.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface EtcFilesInput {
  dir: string;
  hostname: string;
  domainname?: string;
  network: 'host' | 'none' | 'bridge';
  /** Container addresses to list against its hostname. */
  addresses?: string[];
  extraHosts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Address "host-gateway" resolves to. */
  hostGateway?: string;
}

export interface EtcFiles {
  hostnamePath: string;
  hostsPath: string;
  resolvConfPath: string;
}

const LOCAL_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** Host resolv.conf without loopback resolvers (unreachable from a netns). */
export function hostResolvConf(): { nameservers: string[]; search: string[]; options: string[] } {
  let text = '';
  try {
    // a few hundred bytes, read at each start: less than four thread-pool round trips
    text = fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // no resolver configuration on the host
  }
  const nameservers: string[] = [];
  const search: string[] = [];
  const options: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) nameservers.push(f[1]);
    else if ((f[0] === 'search' || f[0] === 'domain') && f.length > 1) search.push(...f.slice(1));
    else if (f[0] === 'options' && f.length > 1) options.push(...f.slice(1));
  }
  return { nameservers, search, options };
}

export async function writeEtcFiles(o: EtcFilesInput): Promise<EtcFiles> {
  const files: EtcFiles = {
    hostnamePath: path.join(o.dir, 'hostname'),
    hostsPath: path.join(o.dir, 'hosts'),
    resolvConfPath: path.join(o.dir, 'resolv.conf'),
  };
  const hostname = o.network === 'host' ? os.hostname() : o.hostname;
  const writes: Promise<void>[] = [fsp.writeFile(files.hostnamePath, `${hostname}\n`, { mode: 0o644 })];

  let hosts: string;
  if (o.network === 'host') {
    hosts = await fsp.readFile('/etc/hosts', 'utf8').catch(() => LOCAL_HOSTS.join('\n') + '\n');
  } else {
    const lines = [...LOCAL_HOSTS];
    for (const eh of o.extraHosts ?? []) {
      const i = eh.lastIndexOf(':');
      const name = eh.slice(0, i);
      let ip = eh.slice(i + 1);
      if (ip === 'host-gateway') ip = o.hostGateway ?? '127.0.0.1';
      lines.push(`${ip}\t${name}`);
    }
    const fqdn = o.domainname ? `${hostname}.${o.domainname} ${hostname}` : hostname;
    for (const addr of o.addresses ?? []) lines.push(`${addr}\t${fqdn}`);
    hosts = lines.join('\n') + '\n';
  }
  if (o.network === 'host' && o.extraHosts?.length) {
    hosts += o.extraHosts.map((eh) => `${eh.slice(eh.lastIndexOf(':') + 1)}\t${eh.slice(0, eh.lastIndexOf(':'))}`).join('\n') + '\n';
  }
  writes.push(fsp.writeFile(files.hostsPath, hosts, { mode: 0o644 }));

  const host = hostResolvConf();
  let nameservers = o.dns?.length ? o.dns : host.nameservers;
  if (o.network !== 'host') nameservers = nameservers.filter((n) => !/^127\.|^::1$/.test(n));
  if (nameservers.length === 0 && o.network !== 'host') nameservers = ['8.8.8.8', '8.8.4.4'];
  const search = o.dnsSearch?.length ? o.dnsSearch : host.search;
  const options = o.dnsOptions?.length ? o.dnsOptions : host.options;
  const resolv =
    nameservers.map((n) => `nameserver ${n}`).join('\n') +
    '\n' +
    (search.length ? `search ${search.join(' ')}\n` : '') +
    (options.length ? `options ${options.join(' ')}\n` : '');
  writes.push(fsp.writeFile(files.resolvConfPath, resolv, { mode: 0o644 }));
  await Promise.all(writes);
  return files;
}
