import { EventEmitter } from 'node:events';
import type { ChatMessage } from '../../domain/chat.js';
import { instanceMessages, instanceOptions } from '../arena.js';
import type { ModelInstance } from '../../domain/arena.js';
import type { Principal } from '../../access/auth.js';
import { arenaMetrics, GenerationService } from '../../gateway/generation.js';
import type { ArenaMetrics } from '../../domain/arena.js';
import type { RateLimiter } from '../../access/rate-limit.js';
import type { ModelRouter } from '../../gateway/router.js';
import type { SharedEvents } from '../../access/shared-events.js';
import type { UsageLedger } from '../../access/usage-ledger.js';
import { timeOrderedId } from '../../store/runs.js';
import type { EvalRecord, EvalStore, JudgeVote, Lease } from '../../store/evals.js';
import type { Cell, CellKey, EvalStatus } from '../../domain/evals.js';
import { configurationKey } from '../../shared/instances.js';
import { checkAnswer, cosine, type CheckContext } from './assertions.js';
import { combineOrders, pairwisePrompt, parsePairVerdict, parseScore, scorePrompt } from './judge.js';
import { KeyPacing, Slots } from './pacing.js';
import { SafeMatcher } from './safe-match.js';
import type { Suite } from '../../domain/evals.js';

/**
 * Evaluations as server-side jobs. The replica that accepted a suite runs it: every cell through the
 * same generation path as the Arena (metrics, catalog policy, usage), at most `concurrency` at a time
 * for the suite and MAX_RUNNING generations for all evaluations of this replica together. Each
 * finished cell is stored at once, so a page reloaded, or opened on another replica, reads the same
 * state, and events go to every replica (shared events) for live views.
 *
 * The replica running an evaluation holds a lease on its row, renewed every `renewMs`. Every replica
 * also looks, as often, for unfinished evaluations whose lease has passed (their replica died, or shut
 * down and released them) and claims one: it resumes it with only the cells not stored yet, then the
 * judgements not stored yet. A graceful shutdown hands its evaluations off that way rather than
 * cancelling them: a deploy or a restart must not end a user's evaluation.
 */

/** Evaluation generations one replica runs at once, all evaluations together. */
const MAX_RUNNING = 8;

export type EvalEvent =
  | { type: 'status'; status: EvalStatus; error?: string | null }
  | { type: 'cell'; cell: Cell; progress: Progress }
  | { type: 'judgement'; prompt_index: number; repeat: number; instances: string[]; outcome: string; progress: Progress }
  | { type: 'end'; status: EvalStatus };

/**
 * What each stored cell cost beyond its generation (assertions, the row, the event), process-wide:
 * the benchmark reads it to hold the bookkeeping to well under a millisecond a cell.
 */
export const bookkeeping = { cells: 0, totalMs: 0, maxMs: 0, recent: [] as number[] };

function noteBookkeeping(ms: number): void {
  bookkeeping.cells++;
  bookkeeping.totalMs += ms;
  bookkeeping.maxMs = Math.max(bookkeeping.maxMs, ms);
  // The last few thousand, for percentiles; older ones go so that a long-lived server does not grow.
  if (bookkeeping.recent.push(ms) > 5_000) bookkeeping.recent.shift();
}

export interface Progress {
  done: number;
  total: number;
}

/** Every cell of a suite, in prompt order (so the matrix fills row by row), unless a plan names some. */
export function planOf(suite: Suite, plan: CellKey[] | null): CellKey[] {
  if (plan) return plan;
  const keys: CellKey[] = [];
  for (let p = 0; p < suite.prompts.length; p++) for (let r = 0; r < suite.repeats; r++) for (const instance of suite.instances) keys.push([p, instance.id, r]);
  return keys;
}

/** Judgements a plan will take: one per cell (score), or two orders per pair of cells on one prompt and repeat (pairwise). */
export function judgementsOf(suite: Suite, plan: CellKey[]): number {
  if (!suite.judge) return 0;
  if (suite.judge.mode === 'score') return plan.length;
  const groups = new Map<string, number>();
  for (const [p, , r] of plan) groups.set(`${p}:${r}`, (groups.get(`${p}:${r}`) ?? 0) + 1);
  let pairs = 0;
  for (const n of groups.values()) pairs += (n * (n - 1)) / 2;
  return pairs;
}

interface LeaseTimes {
  /** How often leases are renewed and expired ones looked for. */
  renewMs: number;
  /** How long a lease holds unrenewed. */
  expiryMs: number;
}

/** Why a job stopped on this replica while its evaluation goes on elsewhere (no status change, no `end`). */
class HandedOff extends Error {}

export interface JobDeps {
  store: EvalStore;
  /** This replica, as lease holder. */
  runnerId: string;
  lease: LeaseTimes;
  /**
   * Who the evaluation runs as when it is resumed without its request: null without an owning key,
   * undefined when that key can no longer be used (revoked, expired).
   */
  principalOf: (ownerKeyId: string | null) => Promise<Principal | null | undefined>;
  /** Told when this replica resumes an evaluation another run left. */
  onResume: (id: string) => void;
  generation: GenerationService;
  router: ModelRouter;
  shared: SharedEvents;
  limiter: RateLimiter;
  ledger: UsageLedger;
  onError: (error: unknown) => void;
}

interface Job {
  controller: AbortController;
  done: Promise<void>;
  /** When this replica's lease ends (ms): a replica that cannot renew it must stop before another claims it. */
  leaseUntil: number;
}

const cellKey = (p: number, instanceId: string, repeat: number) => `${p}\u0000${instanceId}\u0000${repeat}`;
const pairKey = (p: number, repeat: number, a: string, b: string) => `${p}\u0000${repeat}\u0000${a}\u0000${b}`;

export class EvalJobs {
  /** Local listeners per evaluation id, fed by the shared `eval-event` channel. */
  readonly events = new EventEmitter();
  private readonly jobs = new Map<string, Job>();
  private readonly slots = new Slots(MAX_RUNNING);
  private readonly matcher = new SafeMatcher();
  private timer: NodeJS.Timeout | undefined;
  /** One renewal-and-claim round at a time: a slow database must not pile them up. */
  private ticking: Promise<void> | undefined;
  private closing = false;

  constructor(private readonly deps: JobDeps) {
    this.events.setMaxListeners(0);
  }

  /** Subscribes to the events and cancels of every replica; call once at start-up. */
  async listen(): Promise<void> {
    await this.deps.shared.on('eval-event', (message) => {
      const { id, event } = message as { id: string; event: EvalEvent };
      this.events.emit(id, event);
    });
    await this.deps.shared.on('eval-cancel', (id) => {
      if (typeof id === 'string') this.jobs.get(id)?.controller.abort(new Error('cancelled'));
    });
    // A restarted process finds what it (or a dead replica) left at once, not one interval later.
    this.timer = setInterval(() => void this.tick(), this.deps.lease.renewMs);
    this.timer.unref();
    void this.tick();
  }

  /** The lease a claim or renewal made now gives this replica. */
  private lease(): Lease {
    return { runnerId: this.deps.runnerId, expiresAt: new Date(Date.now() + this.deps.lease.expiryMs).toISOString() };
  }

  /** A new evaluation's lease: the replica that stores it runs it. */
  newLease(): Lease {
    return this.lease();
  }

  private tick(): Promise<void> {
    this.ticking ??= this.renewAndClaim()
      .catch(this.deps.onError)
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async renewAndClaim(): Promise<void> {
    for (const [id, job] of this.jobs) {
      if (job.controller.signal.aborted) continue;
      const lease = this.lease();
      try {
        if (await this.deps.store.renewLease(id, lease)) job.leaseUntil = Date.parse(lease.expiresAt);
        // Cancelled (a cancel whose message did not reach this replica) or claimed by another replica.
        else job.controller.abort(new HandedOff('the evaluation ended or another replica runs it'));
      } catch (error) {
        this.deps.onError(error);
        // Past its expiry another replica may resume it: stop before then (the next round may come too
        // late), rather than run its cells twice.
        if (Date.now() + this.deps.lease.renewMs >= job.leaseUntil) job.controller.abort(new HandedOff('the lease could not be renewed'));
      }
    }
    if (this.closing) return;
    const claimed = await this.deps.store.claimExpired(this.lease());
    if (claimed && !this.closing) await this.resume(claimed);
  }

  private async resume(evaluation: EvalRecord): Promise<void> {
    const principal = await this.deps.principalOf(evaluation.ownerKeyId);
    if (principal === undefined) {
      const message = 'the API key that started the evaluation can no longer be used, so it was not resumed';
      if (await this.deps.store.setStatus(evaluation.id, 'failed', message)) this.emit(evaluation.id, { type: 'status', status: 'failed', error: message });
      this.emit(evaluation.id, { type: 'end', status: 'failed' });
      return;
    }
    this.deps.onResume(evaluation.id);
    this.launch(evaluation, principal, true);
  }

  private emit(id: string, event: EvalEvent): void {
    void this.deps.shared.publish('eval-event', { id, event });
  }

  /** Runs a new evaluation, stored with this replica's lease (newLease). */
  start(evaluation: EvalRecord, principal: Principal | null): void {
    // Accepted while shutting down (a request already in flight): another replica, or the restart, runs it.
    if (this.closing) return void this.deps.store.releaseLease(evaluation.id, this.deps.runnerId).catch(this.deps.onError);
    this.launch(evaluation, principal, false);
  }

  private launch(evaluation: EvalRecord, principal: Principal | null, resumed: boolean): void {
    const controller = new AbortController();
    const handedOff = () => controller.signal.aborted && controller.signal.reason instanceof HandedOff;
    const done = this.run(evaluation, principal, controller.signal, resumed)
      .catch(async (error: unknown) => {
        // Stopped on purpose: a cancel has set the status already, and a hand-off must leave it running.
        if (controller.signal.aborted) return;
        this.deps.onError(error);
        if (await this.deps.store.setStatus(evaluation.id, 'failed', (error as Error).message).catch(() => false)) {
          this.emit(evaluation.id, { type: 'status', status: 'failed', error: (error as Error).message });
        }
      })
      .finally(() => {
        this.jobs.delete(evaluation.id);
        if (handedOff()) return;
        void this.deps.store.get(evaluation.id).then((row) => this.emit(evaluation.id, { type: 'end', status: row?.status ?? 'failed' }), this.deps.onError);
      });
    this.jobs.set(evaluation.id, { controller, done, leaseUntil: Date.now() + this.deps.lease.expiryMs });
  }

  /** Cancels wherever the job runs: here, or on the replica that runs it (told through shared events). */
  async cancel(id: string): Promise<boolean> {
    const changed = await this.deps.store.setStatus(id, 'cancelled');
    if (changed) this.emit(id, { type: 'status', status: 'cancelled' });
    const local = this.jobs.get(id);
    if (local) local.controller.abort(new Error('cancelled'));
    else void this.deps.shared.publish('eval-cancel', id);
    return changed;
  }

  /**
   * Stops every job of this replica (shutdown) and releases their leases: each evaluation stays
   * running, and another replica, or this server once restarted, resumes it from its stored cells.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    // A claim in progress would start a job after the ones stopped below.
    await this.ticking;
    const running = [...this.jobs.entries()];
    for (const [, job] of running) job.controller.abort(new HandedOff('the server is shutting down'));
    await Promise.all(running.map(([, job]) => job.done.catch(() => undefined)));
    await Promise.all(running.map(([id]) => this.deps.store.releaseLease(id, this.deps.runnerId).catch(this.deps.onError)));
    await this.matcher.close();
  }

  private context(signal: AbortSignal, pacing: KeyPacing): CheckContext {
    return {
      match: (answer, checks) => this.matcher.match(answer, checks),
      similarity: async (model, a, b) => {
        await pacing.admit(signal);
        const started = performance.now();
        const result = await this.deps.router.embed({ model, input: [a, b], signal });
        pacing.usage(started).add(model, result.promptTokens, 0);
        return cosine(result.embeddings[0] ?? [], result.embeddings[1] ?? []);
      },
    };
  }

  /** One generation on the shared path, paced by the owner's key and bounded by this replica's slots. */
  private generate(instance: ModelInstance, messages: ChatMessage[], signal: AbortSignal, pacing: KeyPacing) {
    return this.slots.run(async () => {
      await pacing.admit(signal);
      const started = performance.now();
      const events = this.deps.generation.chat({ model: instance.model, messages: instanceMessages(instance, messages), options: instanceOptions(instance), signal }, pacing.usage(started));
      return GenerationService.collect(events);
    });
  }

  private async run(evaluation: EvalRecord, principal: Principal | null, signal: AbortSignal, resumed: boolean): Promise<void> {
    const { store } = this.deps;
    const { suite, id } = evaluation;
    if (!(await store.setStatus(id, 'running'))) return;
    this.emit(id, { type: 'status', status: 'running' });
    const pacing = new KeyPacing(principal, this.deps.limiter, this.deps.ledger);
    const context = this.context(signal, pacing);
    // A resumed evaluation keeps what was stored: its cells are not run again, its judgements not redone.
    const [stored, votes] = resumed
      ? await Promise.all([store.cells(id), suite.judge?.mode === 'pairwise' ? store.votes(id) : Promise.resolve([])])
      : [[], []];
    const have = new Set(stored.map((c) => cellKey(c.prompt_index, c.instance_id, c.repeat)));
    const plan = planOf(suite, evaluation.plan).filter(([p, i, r]) => !have.has(cellKey(p, i, r)));
    const byId = new Map(suite.instances.map((i) => [i.id, i]));
    const progress: Progress = { done: stored.length + stored.filter((c) => c.judge !== null).length + votes.length, total: evaluation.total };
    const cells: Cell[] = [...stored];
    const suiteSlots = new Slots(suite.concurrency);

    const runCell = async ([p, instanceId, repeat]: CellKey) => {
      if (signal.aborted) return;
      const instance = byId.get(instanceId)!;
      const prompt = suite.prompts[p]!;
      let answer = '';
      let metrics: ArenaMetrics | null = null;
      let error: string | null = null;
      try {
        const result = await this.generate(instance, prompt.messages, signal, pacing);
        answer = result.text;
        metrics = arenaMetrics(result);
      } catch (failure) {
        // A cell cut short by a cancel is no result: it is not stored, the record keeps finished cells only.
        if (signal.aborted) return;
        error = (failure as Error).message;
      }
      const began = performance.now();
      const assertions = metrics ? await checkAnswer([...suite.assert, ...prompt.assert], answer, metrics, prompt.reference, context) : [];
      const cell: Cell = { prompt_index: p, instance_id: instanceId, repeat, answer, metrics, assertions, pass: error === null && assertions.every((a) => a.pass), error, judge: null };
      // Not stored means another run stored it first (this one's lease had passed): that one reports it.
      if (!(await store.addCell(id, cell))) return;
      cells.push(cell);
      progress.done++;
      this.emit(id, { type: 'cell', cell, progress: { ...progress } });
      noteBookkeeping(performance.now() - began);
    };
    await Promise.all(plan.map((key) => suiteSlots.run(() => runCell(key))));
    if (suite.judge && !signal.aborted) await this.judge(evaluation, cells, votes, signal, pacing, progress, suiteSlots);
    if (signal.aborted) return;
    if (await store.setStatus(id, 'done')) this.emit(id, { type: 'status', status: 'done' });
  }

  /** Judges the cells; those with a stored verdict (score) or vote (pairwise), from before a resume, are skipped. */
  private async judge(evaluation: EvalRecord, cells: Cell[], votes: JudgeVote[], signal: AbortSignal, pacing: KeyPacing, progress: Progress, suiteSlots: Slots): Promise<void> {
    const { suite, id } = evaluation;
    const judge = suite.judge!;
    const byId = new Map(suite.instances.map((i) => [i.id, i]));
    const ask = async (messages: ChatMessage[]) => {
      try {
        return (await this.generate(judge.instance, messages, signal, pacing)).text;
      } catch (error) {
        if (signal.aborted) throw error;
        return `(the judge failed: ${(error as Error).message})`;
      }
    };
    const tick = () => {
      progress.done++;
      return { ...progress };
    };
    const tasks: (() => Promise<void>)[] = [];
    if (judge.mode === 'score') {
      for (const cell of cells) {
        if (cell.judge !== null) continue;
        tasks.push(async () => {
          if (cell.error !== null) return void tick();
          const reply = await ask(scorePrompt(judge.rubric, suite.prompts[cell.prompt_index]!.messages, cell.answer));
          const score = parseScore(reply);
          cell.judge = score === undefined ? { abstained: true, reply } : { score, reply };
          await this.deps.store.setCellJudge(id, [cell.prompt_index, cell.instance_id, cell.repeat], cell.judge);
          this.emit(id, { type: 'judgement', prompt_index: cell.prompt_index, repeat: cell.repeat, instances: [cell.instance_id], outcome: score === undefined ? 'abstained' : String(score), progress: tick() });
        });
      }
    } else {
      const voted = new Set(votes.map((v) => pairKey(v.promptIndex, v.repeat, v.a.instance.id, v.b.instance.id)));
      const groups = new Map<string, Cell[]>();
      for (const cell of cells) groups.set(`${cell.prompt_index}:${cell.repeat}`, [...(groups.get(`${cell.prompt_index}:${cell.repeat}`) ?? []), cell]);
      for (const group of groups.values()) {
        group.sort((x, y) => suite.instances.findIndex((i) => i.id === x.instance_id) - suite.instances.findIndex((i) => i.id === y.instance_id));
        for (let i = 0; i < group.length; i++) {
          for (let j = i + 1; j < group.length; j++) {
            const [x, y] = [group[i]!, group[j]!];
            if (voted.has(pairKey(x.prompt_index, x.repeat, x.instance_id, y.instance_id))) continue;
            tasks.push(async () => {
              if (x.error !== null || y.error !== null) return void tick();
              const messages = suite.prompts[x.prompt_index]!.messages;
              const replies = await Promise.all([ask(pairwisePrompt(judge.rubric, messages, x.answer, y.answer)), ask(pairwisePrompt(judge.rubric, messages, y.answer, x.answer))]);
              const [forward, backward] = replies.map(parsePairVerdict) as [ReturnType<typeof parsePairVerdict>, ReturnType<typeof parsePairVerdict>];
              const outcome = combineOrders(forward, backward);
              const [a, b] = [byId.get(x.instance_id)!, byId.get(y.instance_id)!];
              await this.deps.store.addVote({
                id: timeOrderedId(),
                evalId: id,
                ownerKeyId: evaluation.ownerKeyId,
                judgeModel: judge.instance.model,
                promptIndex: x.prompt_index,
                repeat: x.repeat,
                a: { config: configurationKey(a), instance: a },
                b: { config: configurationKey(b), instance: b },
                winner: outcome === 'abstained' ? null : outcome,
                verdicts: { forward, backward, replies },
              });
              this.emit(id, { type: 'judgement', prompt_index: x.prompt_index, repeat: x.repeat, instances: [a.id, b.id], outcome, progress: tick() });
            });
          }
        }
      }
    }
    await Promise.all(tasks.map((task) => suiteSlots.run(async () => (signal.aborted ? undefined : task()))));
  }
}
