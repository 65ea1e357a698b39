import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BackendError, type ModelProvider } from '../providers/provider.js';
import { isSafeModelName } from '../providers/embedded/gguf-catalog.js';
import { checkPullSource, isFileSource } from '../providers/embedded/pull-source.js';
import type { PullPolicy } from '../providers/embedded/pull-policy.js';
import type { Principal } from './auth.js';
import type { ModelRouter } from '../gateway/router.js';
import { PushStream } from '../shared/push-stream.js';
import type { PullJob } from '../domain/models.js';

const FINISHED_JOBS_KEPT = 100;

/** A provider that has the pull ability. */
type Puller = ModelProvider & { pull: NonNullable<ModelProvider['pull']> };

/** What an API key is told of a failed pull: the reason could name a private host. */
const FAILED_FOR_KEYS = 'the download failed (the admin can see why)';

/**
 * A job as `principal` may see it: the admin (or anyone on an open server) sees all of it; an API key
 * sees the model and its progress but not where it comes from nor why it failed.
 */
export function pullJobFor(principal: Principal | null | undefined, job: PullJob): PullJob | Omit<PullJob, 'source'> {
  if (principal?.kind === 'admin' || principal?.kind === 'open') return job;
  const { source: _source, ...visible } = job;
  return visible.state === 'error' ? { ...visible, error: FAILED_FOR_KEYS } : visible;
}

/**
 * Model downloads as server-side jobs: they outlive the request that started them, any number of
 * clients can watch one, and a finished job stays visible for a while. `events` emits `update` with
 * the job on every change, which is what the web UI and a second replica follow.
 */
export class PullJobs {
  readonly events = new EventEmitter();
  /** `controller` is absent for jobs mirrored from another replica (see access/shared-events.ts). */
  private readonly jobs = new Map<string, { job: PullJob; controller?: AbortController; done?: Promise<void> }>();

  constructor(
    private readonly router: ModelRouter,
    private readonly policy: PullPolicy,
  ) {
    this.events.setMaxListeners(0);
  }

  list(): PullJob[] {
    return [...this.jobs.values()].map((entry) => entry.job).reverse();
  }

  get(id: string): PullJob | undefined {
    return this.jobs.get(id)?.job;
  }

  /**
   * The provider that fetches `source`: one whose pull takes that kind of source and that is there
   * now (an optional host not answering counts as absent). A registry name goes to a model server with
   * a store of its own when there is one, so the model lands beside its other models; otherwise, and
   * for URLs and hf: files, it is downloaded into the local models directory.
   */
  private chooseProvider(source: string, shown: string): Puller {
    const file = isFileSource(source);
    const able = this.router.backends.filter((provider) => {
      const pulls = provider.capabilities?.pulls;
      return provider.pull && pulls && (file ? pulls.files : pulls.registryNames) && !provider.absent && !this.router.isDown(provider);
    });
    const chosen = able.find((provider) => !provider.capabilities!.pulls!.storesLocally) ?? able[0];
    if (!chosen?.pull) throw new BackendError(`cannot pull '${shown}': no backend can download models`, 400);
    return chosen as Puller;
  }

  /** Validates and starts a pull; returns at once with the job. */
  async start(source: string, name?: string): Promise<PullJob> {
    // Whatever backend would fetch it, a source or name that can never be pulled is a 400 now.
    const shown = checkPullSource(source, this.policy);
    if (name !== undefined && !isSafeModelName(name)) throw new BackendError(`invalid model name '${name}'`, 400);
    // The backends have been listed once, so an optional Ollama host is known to be there or not.
    await this.router.models();
    const provider = this.chooseProvider(source, shown);
    // Named from the shown source: a URL's query never names a model.
    const model = name ?? provider.pullName?.(shown) ?? source;
    const running = [...this.jobs.values()].find((e) => e.job.model === model && e.job.state === 'running');
    if (running) return running.job;
    const job: PullJob = {
      id: crypto.randomUUID(),
      source: shown,
      model,
      backend: provider.id,
      status: 'pulling manifest',
      state: 'running',
      startedAt: new Date().toISOString(),
    };
    const controller = new AbortController();
    const entry = { job, controller, done: this.run(job, source, provider, model, controller.signal) };
    this.jobs.set(job.id, entry);
    this.trim();
    return job;
  }

  private update(job: PullJob, change: Partial<PullJob>): void {
    Object.assign(job, change);
    if (job.total && job.completed !== undefined) job.percent = Math.min(100, Math.round((job.completed / job.total) * 1000) / 10);
    this.events.emit('update', { ...job });
  }

  /** `source` is the job's source as asked for, query string included: only the download sees it. */
  private async run(job: PullJob, source: string, provider: Puller, name: string, signal: AbortSignal): Promise<void> {
    // Started before the job is in the map: let the caller record it before the first update.
    await Promise.resolve();
    try {
      for await (const progress of provider.pull(source, name, signal)) {
        this.update(job, {
          status: progress.status,
          digest: progress.digest ?? job.digest,
          total: progress.total ?? job.total,
          completed: progress.completed ?? job.completed,
        });
      }
      this.router.invalidate();
      this.update(job, { state: 'success', status: 'success', percent: 100, finishedAt: new Date().toISOString() });
    } catch (error) {
      const cancelled = signal.aborted;
      this.update(job, {
        state: cancelled ? 'cancelled' : 'error',
        status: cancelled ? 'cancelled' : 'error',
        error: cancelled ? 'cancelled' : (error as Error).message,
        finishedAt: new Date().toISOString(),
      });
    }
  }

  /** Yields the job's progress as it happens until it ends (used by streamed /api/pull). */
  async *follow(id: string, signal?: AbortSignal): AsyncGenerator<PullJob> {
    const entry = this.jobs.get(id);
    if (!entry) return;
    // Updates that arrive while the caller is busy wait here; the last one (the job's end) ends the
    // stream, and so does the caller's signal, once what was already queued has been handed over.
    const queue = new PushStream<PullJob>();
    const listener = (job: PullJob) => {
      if (job.id !== id) return;
      queue.push(job);
      if (job.state !== 'running') queue.end();
    };
    this.events.on('update', listener);
    const onAbort = () => queue.end();
    signal?.addEventListener('abort', onAbort);
    try {
      const snapshot = { ...entry.job };
      yield snapshot;
      if (signal?.aborted) return;
      // A job that had already ended hands over only what was queued meanwhile.
      if (snapshot.state !== 'running') queue.end();
      yield* queue;
    } finally {
      this.events.off('update', listener);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  cancel(id: string): boolean {
    const entry = this.jobs.get(id);
    if (!entry || entry.job.state !== 'running') return false;
    // A mirrored job runs on another replica: ask it to cancel (shared-events forwards this).
    if (!entry.controller) this.events.emit('cancel-mirrored', id);
    else entry.controller.abort(new Error('cancelled'));
    return true;
  }

  /** Cancels every job running here and resolves once they have ended (their temporary files removed). */
  async cancelAll(): Promise<void> {
    const entries = [...this.jobs.values()].filter((entry) => entry.controller && entry.job.state === 'running');
    for (const entry of entries) entry.controller!.abort(new Error('server shutting down'));
    await Promise.all(entries.map((entry) => entry.done));
  }

  /** Whether the job runs on another replica and is only mirrored here. */
  isMirrored(id: string): boolean {
    const entry = this.jobs.get(id);
    return entry !== undefined && entry.controller === undefined;
  }

  /** Records another replica's job as it reported it, and tells this replica's followers. */
  mirror(job: PullJob): void {
    const entry = this.jobs.get(job.id);
    if (entry?.controller) return;
    if (entry) Object.assign(entry.job, job);
    else {
      this.jobs.set(job.id, { job: { ...job } });
      this.trim();
    }
    this.events.emit('update', { ...job });
  }

  private trim(): void {
    const finished = [...this.jobs.values()].filter((e) => e.job.state !== 'running');
    for (const entry of finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_KEPT))) this.jobs.delete(entry.job.id);
  }
}

;
