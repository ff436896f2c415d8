/** What a handler gets for one request. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../util/log.js';
import type { Authenticator, Identity } from '../auth/authenticator.js';
import type { Registry } from '../registry.js';
import type { Route } from './routes.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  route: Route;
  registry: Registry;
  auth: Authenticator;
  identity: Identity;
  /** Whether the request came over TLS (the token realm's scheme follows it). */
  secure: boolean;
  log: Logger;
}
