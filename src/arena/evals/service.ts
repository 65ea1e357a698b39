import { ArenaValidationError, resolveInstances, type InstanceDefaults, type UnsaidByInstance } from '../arena.js';
import { ApiKeys } from '../../access/api-keys.js';
import type { Principal } from '../../access/auth.js';
import type { Catalog } from '../../access/catalog.js';
import { inactiveMessage } from '../../access/catalog.js';
import type { ModelRouter } from '../../gateway/router.js';
import { maySee, notAllowedMessage, ownerOf } from '../run-access.js';
import { FINISHED, type EvalRecord, type EvalStore } from '../../store/evals.js';
import { type CellKey } from '../../domain/evals.js';
import { timeOrderedId } from '../../store/runs.js';
import { HttpError, badRequest } from '../../gateway/errors.js';
import type { EvalView } from '../../domain/evals.js';
import { EvalJobs, judgementsOf, planOf } from './runner.js';
import { parseSuite, suiteModels, SuiteError } from './suite.js';
import type { Suite } from '../../domain/evals.js';
import { summarise } from './summary.js';

/**
 * The evaluation use cases the HTTP routes (and so the CLI) call: accept a suite, show an evaluation,
 * re-run it. Every model a suite names is checked here, because a suite's models are not where the
 * generic request checks look (grid, judge, similarity assertions).
 */

export interface EvalDeps {
  store: EvalStore;
  jobs: EvalJobs;
  router: ModelRouter;
  catalog: Catalog;
  defaults: InstanceDefaults;
}

export class EvalService {
  constructor(private readonly deps: EvalDeps) {}

  /** Parses, checks every model against the router, the catalog and the caller's key. */
  async prepare(document: unknown, principal: Principal | null): Promise<Suite> {
    try {
      const unsaid: UnsaidByInstance = new Map();
      const suite = parseSuite(document, unsaid);
      this.checkAccess(suite, principal);
      suite.instances = await resolveInstances(this.deps.router, suite.instances, this.deps.defaults, unsaid);
      if (suite.judge) suite.judge.instance = (await resolveInstances(this.deps.router, [suite.judge.instance], this.deps.defaults, unsaid))[0]!;
      for (const assertion of [...suite.assert, ...suite.prompts.flatMap((p) => p.assert)]) {
        if (assertion.type !== 'similar') continue;
        assertion.model = await this.deps.router.resolve(assertion.model).then(
          (model) => model.name,
          () => {
            throw new SuiteError(`Model not found: ${assertion.model}`);
          },
        );
      }
      // Resolution may have changed names (a tag added): the resolved names must pass too.
      this.checkAccess(suite, principal);
      return suite;
    } catch (error) {
      if (error instanceof ArenaValidationError) throw badRequest(error.message);
      throw error;
    }
  }

  private checkAccess(suite: Suite, principal: Principal | null): void {
    for (const model of suiteModels(suite)) {
      if (principal?.kind === 'key' && !ApiKeys.allows(principal, model)) throw new HttpError(403, notAllowedMessage(model), 'permission_error', 'model_not_allowed');
      if (!this.deps.catalog.isActive(model)) throw new HttpError(403, inactiveMessage(model), 'invalid_request_error', 'model_inactive');
    }
  }

  async start(suite: Suite, principal: Principal | null, plan: CellKey[] | null = null, rerunOf: string | null = null): Promise<EvalRecord> {
    const keys = planOf(suite, plan);
    const evaluation: EvalRecord = {
      id: timeOrderedId(),
      ownerKeyId: ownerOf(principal),
      name: suite.name,
      status: 'queued',
      suite,
      plan,
      total: keys.length + judgementsOf(suite, keys),
      error: null,
      rerunOf,
      createdAt: new Date().toISOString(),
      finishedAt: null,
    };
    await this.deps.store.create(evaluation, this.deps.jobs.newLease());
    this.deps.jobs.start(evaluation, principal);
    return evaluation;
  }

  /** The evaluation if the caller may see it; a key's request for another key's evaluation is a 404. */
  async find(id: string, principal: Principal | null): Promise<EvalRecord> {
    const evaluation = await this.deps.store.get(id);
    if (!evaluation || !maySee(principal, evaluation.ownerKeyId)) throw new HttpError(404, 'Evaluation not found', 'invalid_request_error', 'not_found');
    return evaluation;
  }

  async view(evaluation: EvalRecord): Promise<EvalView> {
    const { suite } = evaluation;
    const [cells, votes] = await Promise.all([this.deps.store.cells(evaluation.id), suite.judge?.mode === 'pairwise' ? this.deps.store.votes(evaluation.id) : Promise.resolve([])]);
    const judged = cells.filter((c) => c.judge !== null).length + votes.length;
    const finished = FINISHED.has(evaluation.status);
    const done = evaluation.status === 'done' ? evaluation.total : Math.min(evaluation.total, cells.length + judged);
    const summary = await summarise(suite.instances, cells, votes, suite.judge?.mode, suite.threshold?.pass_rate);
    return {
      id: evaluation.id,
      name: evaluation.name,
      status: evaluation.status,
      error: evaluation.error,
      created_at: evaluation.createdAt,
      finished_at: evaluation.finishedAt,
      rerun_of: evaluation.rerunOf,
      progress: { done, total: evaluation.total },
      threshold: suite.threshold ?? null,
      passed: suite.threshold && finished ? summary.every((row) => row.meets_threshold === true) : null,
      prompts: suite.prompts.map((p) => ({ messages: p.messages, ...(p.reference === undefined ? {} : { reference: p.reference }) })),
      instances: suite.instances,
      judge: suite.judge ? { mode: suite.judge.mode, model: suite.judge.instance.model, rubric: suite.judge.rubric } : null,
      summary,
      cells,
    };
  }

  /** Runs a finished evaluation's suite again: every cell, or those that failed or never ran. */
  async rerun(evaluation: EvalRecord, failedOnly: boolean, principal: Principal | null): Promise<EvalRecord> {
    if (!FINISHED.has(evaluation.status)) throw new HttpError(409, 'The evaluation is still running', 'invalid_request_error', 'conflict');
    // The models must still exist and be allowed to this caller.
    await this.prepare({ ...evaluationDocument(evaluation.suite) }, principal);
    let plan: CellKey[] | null = null;
    if (failedOnly) {
      const cells = await this.deps.store.cells(evaluation.id);
      const passed = new Set(cells.filter((c) => c.pass).map((c) => `${c.prompt_index}\u0000${c.instance_id}\u0000${c.repeat}`));
      plan = planOf(evaluation.suite, evaluation.plan).filter(([p, i, r]) => !passed.has(`${p}\u0000${i}\u0000${r}`));
      if (plan.length === 0) throw badRequest('No failed cells to re-run');
    }
    return this.start(evaluation.suite, principal, plan, evaluation.id);
  }
}

/** A stored suite as a document again (for the checks of a re-run). */
function evaluationDocument(suite: Suite): Record<string, unknown> {
  return {
    name: suite.name,
    prompts: suite.prompts.map((p) => ({ messages: p.messages, ...(p.reference === undefined ? {} : { reference: p.reference }), assert: p.assert })),
    model_instances: suite.instances,
    repeats: suite.repeats,
    assert: suite.assert,
    ...(suite.judge ? { judge: { mode: suite.judge.mode, rubric: suite.judge.rubric, ...suite.judge.instance } } : {}),
    ...(suite.threshold ? { threshold: suite.threshold } : {}),
    concurrency: suite.concurrency,
  };
}
