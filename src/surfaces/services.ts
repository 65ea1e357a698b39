import type { Config } from '../config.js';
import type { EmbeddedEngine } from '../backends/embedded/engine.js';
import type { ApiManagement } from '../core/api-management.js';
import type { Authenticator } from '../core/auth.js';
import type { GenerationService } from '../core/generation.js';
import type { Metrics } from '../core/metrics.js';
import type { PullJobs } from '../core/pull-jobs.js';
import type { RouteEntry } from '../core/route-access.js';
import type { ModelRouter } from '../core/router.js';
import type { SessionService } from '../core/sessions.js';
import type { Store } from '../store/database.js';

/**
 * What every route module is given: the product's services, built once by the composition root
 * (src/server.ts), so that no route builds or looks up its own.
 */
export interface Services extends ApiManagement {
  config: Config;
  engine: EmbeddedEngine;
  router: ModelRouter;
  generation: GenerationService;
  metrics: Metrics;
  auth: Authenticator;
  pulls: PullJobs;
  store: Store;
  /** Server-side chat sessions of `/api/chat`. */
  sessions: SessionService;
  startedAt: Date;
  /** Every registered route with its access level, as the router knows it. */
  routes: readonly RouteEntry[];
}
