import type { Config } from '../config.js';
import type { EmbeddedEngine } from '../providers/embedded/engine.js';
import type { ApiManagement } from '../access/api-management.js';
import type { Authenticator } from '../access/auth.js';
import type { GenerationService } from '../gateway/generation.js';
import type { Metrics } from '../gateway/metrics.js';
import type { PullJobs } from '../access/pull-jobs.js';
import type { RouteEntry } from '../access/route-access.js';
import type { ModelRouter } from '../gateway/router.js';
import type { SessionService } from '../access/sessions.js';
import type { Store } from '../store/database.js';

/**
 * What every route module is given: the product's services, built once by the composition root
 * (src/app.ts), so that no route builds or looks up its own.
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
