/**
 * Host ports for published container ports: explicit ones are checked
 * against other containers and against the host (a bind test), empty or 0
 * ones get a free port from the kernel. No proxy process holds them: the
 * DNAT rules netavark writes do the forwarding.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { conflict, invalidArgument } from '../../core/errdefs/index.js';

export interface PortRequest {
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIp: string;
  /** "", "0", "8080" or a range "8000-8010". */
  hostPort: string;
}

export interface PortMapping {
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIp: string;
  hostPort: number;
}

function tryBind(protocol: PortMapping['protocol'], hostIp: string, port: number): Promise<number | undefined> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => {
        s.close();
        resolve(undefined);
      });
      s.bind(port, host, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host, exclusive: true }, () => {
      const address = srv.address();
      const p = typeof address === 'object' && address ? address.port : undefined;
      srv.close(() => resolve(p));
    });
  });
}

export class PortAllocator {
  private readonly used = new Map<string, { owner: string; hostIp: string }>();

  private key(protocol: string, port: number): string {
    return `${protocol}/${port}`;
  }

  private takenByOther(m: { protocol: string; hostPort: number; hostIp: string }, owner: string): boolean {
    const u = this.used.get(this.key(m.protocol, m.hostPort));
    if (!u || u.owner === owner) return false;
    return !u.hostIp || !m.hostIp || u.hostIp === m.hostIp;
  }

  /** Records mappings that already exist (daemon restart). */
  claim(owner: string, mappings: PortMapping[]): void {
    for (const m of mappings) this.used.set(this.key(m.protocol, m.hostPort), { owner, hostIp: m.hostIp });
  }

  release(owner: string): void {
    for (const [k, u] of this.used) if (u.owner === owner) this.used.delete(k);
  }

  async allocate(owner: string, requests: PortRequest[]): Promise<PortMapping[]> {
    const out: PortMapping[] = [];
    try {
      for (const r of requests) {
        const m = await this.allocateOne(owner, r);
        this.used.set(this.key(m.protocol, m.hostPort), { owner, hostIp: m.hostIp });
        out.push(m);
      }
    } catch (err) {
      this.release(owner);
      throw err;
    }
    return out;
  }

  private async allocateOne(owner: string, r: PortRequest): Promise<PortMapping> {
    const base = { containerPort: r.containerPort, protocol: r.protocol, hostIp: r.hostIp };
    const shown = `${r.hostIp || '0.0.0.0'}`;
    if (r.hostPort === '' || r.hostPort === '0') {
      for (let i = 0; i < 50; i++) {
        const p = await tryBind(r.protocol, r.hostIp, 0);
        if (p && !this.takenByOther({ ...base, hostPort: p }, owner)) return { ...base, hostPort: p };
      }
      throw conflict(`no free host port for ${r.containerPort}/${r.protocol}`);
    }
    const m = /^(\d+)(?:-(\d+))?$/.exec(r.hostPort);
    if (!m) throw invalidArgument(`invalid host port: ${r.hostPort}`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (lo < 1 || hi > 65535 || hi < lo) throw invalidArgument(`invalid host port: ${r.hostPort}`);
    for (let p = lo; p <= hi; p++) {
      if (this.takenByOther({ ...base, hostPort: p }, owner)) continue;
      if ((await tryBind(r.protocol, r.hostIp, p)) !== undefined) return { ...base, hostPort: p };
    }
    throw conflict(`Bind for ${shown}:${r.hostPort} failed: port is already allocated`);
  }
}
