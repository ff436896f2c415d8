/**
 * The event bus behind GET /events: services publish, subscribers filter.
 * A bounded ring keeps recent events so `since` can replay them.
 */
import { EventEmitter } from 'node:events';

export type EventType = 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'builder';

export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  // legacy fields, containers and images only
  status?: string;
  id?: string;
  from?: string;
}

const RING_SIZE = 1024;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly ring: EngineEvent[] = [];
  private lastNano = 0;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    let nano = Date.now() * 1e6 + Number(process.hrtime.bigint() % 1_000_000n);
    if (nano <= this.lastNano) nano = this.lastNano + 1;
    this.lastNano = nano;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Math.floor(nano / 1e9),
      timeNano: nano,
    };
    if (type === 'container' || type === 'image') {
      event.status = action;
      event.id = id;
      if (attributes.image && type === 'container') event.from = attributes.image;
    }
    this.ring.push(event);
    if (this.ring.length > RING_SIZE) this.ring.shift();
    this.emitter.emit('event', event);
    return event;
  }

  /** Events already published with timeNano in [sinceNano, untilNano]. */
  recent(sinceNano: number, untilNano = Number.MAX_SAFE_INTEGER): EngineEvent[] {
    return this.ring.filter((e) => e.timeNano >= sinceNano && e.timeNano <= untilNano);
  }

  subscribe(listener: (e: EngineEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
