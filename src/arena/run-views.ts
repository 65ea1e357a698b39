import type { ModelInstance } from '../domain/arena.js';
import type { ChatMessage } from '../domain/chat.js';
import type { Answer, RunRecord, RunSummaryRecord, TurnRecord } from '../store/runs.js';

/**
 * A saved run as the API shows it. A battle nobody has voted on yet is blind: its contestants are
 * shown by their side only, and nothing it shows (an error message included) may name a model.
 */

/** What an unvoted battle shows of its contestants: nothing but their side. */
export interface HiddenInstance {
  id: string;
  hidden: true;
}

/** Whether a run's contestants must stay hidden: a battle nobody has voted on yet. */
export function isBlind(run: RunSummaryRecord): boolean {
  return run.kind === 'battle' && (run.battle === null || run.battle.winner === null);
}

export interface TurnView {
  turn: number;
  status: string;
  created_at: string;
  finished_at: string | null;
  history: ChatMessage[];
  histories: Record<string, ChatMessage[]> | null;
  answers: Record<string, Answer>;
}

/**
 * A run as the API shows it. `status`, `finished_at`, `history`, `histories` and `answers` are those
 * of the latest turn, so that a client reading the run named by a request's X-Run-Id finds that
 * request's answers, as it did when every request was a run of its own; `turns` has them all.
 */
export interface RunView {
  id: string;
  kind: string;
  status: string;
  created_at: string;
  finished_at: string | null;
  rerun_of: string | null;
  turn_count: number;
  updated_at: string;
  legacy: boolean;
  history: RunRecord['history'];
  histories: RunRecord['histories'];
  instances: (ModelInstance | HiddenInstance)[];
  answers: Record<string, Answer>;
  battle: RunRecord['battle'];
  turns: TurnView[];
}

/** A backend's error message may name the model; an unvoted battle's must not. */
export function hideModel(text: string, instance: ModelInstance): string {
  return text.split(instance.model).join(`contestant ${instance.id}`);
}

export function anonymiseAnswers(run: RunRecord, of: Record<string, Answer> = run.answers): Record<string, Answer> {
  const answers: Record<string, Answer> = {};
  for (const [id, answer] of Object.entries(of)) {
    let error = answer.error;
    for (const instance of run.instances) if (error !== null) error = hideModel(error, instance);
    answers[id] = { ...answer, error };
  }
  return answers;
}

/** The fields a run and its summary show alike. */
function runHeader(run: RunSummaryRecord) {
  return {
    id: run.id,
    kind: run.kind,
    status: run.status,
    created_at: run.createdAt,
    finished_at: run.finishedAt,
    rerun_of: run.rerunOf,
    turn_count: run.turnCount,
    updated_at: run.updatedAt,
  };
}

export function runView(run: RunRecord): RunView {
  const blind = isBlind(run);
  return {
    ...runHeader(run),
    legacy: run.legacy,
    history: run.history,
    histories: run.histories,
    instances: blind ? run.instances.map((i) => ({ id: i.id, hidden: true as const })) : run.instances,
    answers: blind ? anonymiseAnswers(run) : run.answers,
    battle: run.battle,
    turns: run.turns.map((turn: TurnRecord) => ({
      turn: turn.turn,
      status: turn.status,
      created_at: turn.createdAt,
      finished_at: turn.finishedAt,
      history: turn.history,
      histories: turn.histories,
      answers: blind ? anonymiseAnswers(run, turn.answers) : turn.answers,
    })),
  };
}

export function runSummaryView(run: RunSummaryRecord) {
  const blind = isBlind(run);
  return {
    ...runHeader(run),
    prompt: run.prompt,
    models: blind ? [] : [...new Set(run.instances.map((i) => i.model))],
    instance_count: run.instances.length,
    battle: run.battle,
  };
}
