/**
 * Healthchecks: while a container with a HEALTHCHECK (image or
 * --health-cmd) runs, its test runs as an exec session every interval.
 * State.Health keeps the status, the failing streak and the last five
 * results; a change of status is a `health_status: ...` event.
 */
import type { ContainerRecord, HealthLogEntry } from '../../core/containers/types.js';
import type { HealthConfig } from '../../core/images/types.js';
import { invalidArgument } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import type { Logger } from '../../util/log.js';
import { shortId } from '../../util/ids.js';
import { rfc3339Nano } from '../../util/time.js';
import type { ExecService } from './exec-service.js';

const NS_PER_MS = 1e6;
const DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 };
const MAX_LOG = 5;
const MAX_OUTPUT = 4096;

/** The command a healthcheck runs, or undefined when there is none (or NONE). */
export function healthCommand(h: HealthConfig | undefined, shell: string[] = ['/bin/sh', '-c']): string[] | undefined {
  const test = h?.Test;
  if (!test || test.length === 0) return undefined;
  switch (test[0]) {
    case 'NONE':
      return undefined;
    case 'CMD':
      return test.length > 1 ? test.slice(1) : undefined;
    case 'CMD-SHELL':
      return test.length > 1 ? [...shell, test.slice(1).join(' ')] : undefined;
    default:
      // an old-style list without a kind is a shell command
      return [...shell, test.join(' ')];
  }
}

export function validateHealthConfig(h: HealthConfig | undefined): void {
  if (!h) return;
  for (const [field, value] of [
    ['Interval', h.Interval],
    ['Timeout', h.Timeout],
    ['StartPeriod', h.StartPeriod],
    ['StartInterval', h.StartInterval],
  ] as const) {
    if (value !== undefined && value !== 0 && value < NS_PER_MS) throw invalidArgument(`${field} in Healthcheck cannot be less than 1ms`);
  }
  if (h.Retries !== undefined && h.Retries < 0) throw invalidArgument('Retries in Healthcheck cannot be negative');
}

export interface HealthContainers {
  get(id: string): ContainerRecord | undefined;
  save(c: ContainerRecord): Promise<void>;
  eventAttributes(c: ContainerRecord, extra?: Record<string, string>): Record<string, string>;
}

export class HealthMonitor {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly execs: ExecService,
    private readonly containers: HealthContainers,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  /**
   * A container started: begin probing if it has a healthcheck. `adopt`
   * (daemon restart) keeps the status the container had.
   */
  started(c: ContainerRecord, adopt = false): void {
    this.stopped(c.id);
    const cmd = healthCommand(c.config.Healthcheck, c.config.Shell);
    if (!cmd) {
      if (c.state.Health) delete c.state.Health;
      return;
    }
    if (!adopt || !c.state.Health) {
      c.state.Health = { Status: 'starting', FailingStreak: 0, Log: c.state.Health?.Log ?? [] };
      void this.containers.save(c).catch(() => {});
    }
    const startedAt = Date.parse(c.state.StartedAt);
    this.schedule(c.id, Number.isNaN(startedAt) ? Date.now() : startedAt);
  }

  stopped(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  private settings(c: ContainerRecord): typeof DEFAULTS {
    const h = c.config.Healthcheck ?? {};
    const ms = (v: number | undefined, d: number): number => (v && v > 0 ? v / NS_PER_MS : d);
    return {
      interval: ms(h.Interval, DEFAULTS.interval),
      timeout: ms(h.Timeout, DEFAULTS.timeout),
      startPeriod: ms(h.StartPeriod, DEFAULTS.startPeriod),
      startInterval: ms(h.StartInterval, DEFAULTS.startInterval),
      retries: h.Retries && h.Retries > 0 ? h.Retries : DEFAULTS.retries,
    };
  }

  private schedule(id: string, startedAt: number): void {
    const c = this.containers.get(id);
    if (!c) return;
    const s = this.settings(c);
    // during the start period, probes come every StartInterval (when it is shorter)
    const inStart = Date.now() - startedAt < s.startPeriod;
    const delay = inStart ? Math.min(s.interval, s.startInterval) : s.interval;
    const timer = setTimeout(() => void this.probe(id, startedAt), delay);
    timer.unref();
    this.timers.set(id, timer);
  }

  private async probe(id: string, startedAt: number): Promise<void> {
    const c = this.containers.get(id);
    if (!c || !c.state.Running || c.state.Restarting || !c.state.Health) return;
    if (c.state.Paused) {
      this.schedule(id, startedAt);
      return;
    }
    const s = this.settings(c);
    const cmd = healthCommand(c.config.Healthcheck, c.config.Shell)!;
    const start = rfc3339Nano();
    let exitCode: number;
    let output: string;
    try {
      const r = await this.execs.runCaptured(id, cmd, s.timeout, MAX_OUTPUT);
      exitCode = r.timedOut ? -1 : r.exitCode;
      output = r.timedOut ? `Health check exceeded timeout (${s.timeout / 1000}s)` : r.output;
    } catch (err) {
      exitCode = -1;
      output = (err as Error).message;
    }
    const cur = this.containers.get(id);
    if (!cur || !cur.state.Running || !cur.state.Health || this.timers.get(id) === undefined) return;
    const health = cur.state.Health;
    const entry: HealthLogEntry = { Start: start, End: rfc3339Nano(), ExitCode: exitCode, Output: output };
    health.Log = [...health.Log, entry].slice(-MAX_LOG);
    const before = health.Status;
    if (exitCode === 0) {
      health.Status = 'healthy';
      health.FailingStreak = 0;
    } else if (Date.now() - startedAt >= s.startPeriod || health.Status !== 'starting') {
      health.FailingStreak++;
      if (health.FailingStreak >= s.retries) health.Status = 'unhealthy';
    }
    await this.containers.save(cur).catch((err) => this.log.warn('saving health state failed', { id: shortId(id), error: err as Error }));
    if (health.Status !== before) {
      this.events.publish('container', `health_status: ${health.Status}`, id, this.containers.eventAttributes(cur));
    }
    this.schedule(id, startedAt);
  }
}
