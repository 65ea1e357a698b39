import type { ArenaEvent, ArenaRequest } from './arena.js';
import type { ModelInstance } from '../domain/arena.js';
import { runArena } from './arena.js';
import type { GenerationService, UsageSink } from './generation.js';
import { ApiKeys } from './api-keys.js';
import type { Principal } from './auth.js';
import type { ChatMessage } from '../domain/chat.js';
import type { Answer, RunRecord, RunStatus, RunStore, RunSummaryRecord, TurnRecord } from '../store/runs.js';

/**
 * Runs: every comparison and battle is saved with its settings and answers. The row is written while
 * the generations already run, so saving never delays the first token; the answers are written when
 * the run ends, including what had streamed when a client went away.
 */

export interface RecordedArena {
  runId: string;
  events: AsyncIterableIterator<ArenaEvent>;
}

export interface RecordOptions {
  generation: GenerationService;
  runs: RunStore;
  arena: ArenaRequest;
  runId: string;
  /**
   * Writes the run's row (and a battle's), or appends a turn to a run continued; answers the turn's
   * number (1 when it returns none). Awaited before the caller sends the run id.
   */
  save: () => Promise<number | void>;
  signal: AbortSignal;
  usage?: UsageSink;
  /** Failing to write the answers at the end cannot reach the client any more; it is logged. */
  onFinishError: (error: unknown) => void;
}

/**
 * Starts the generations, then saves the run: both proceed together, and the run id is returned only
 * once the row exists, so a client that reads the `X-Run-Id` header can fetch the run at once. If the
 * row cannot be written, the generations are stopped and the error is thrown.
 */
export async function startRecordedArena(options: RecordOptions): Promise<RecordedArena> {
  const { arena, signal } = options;
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  const source = runArena(options.generation, arena, controller.signal, options.usage);
  const first = source.next();
  // Awaited below; this only keeps a failure meanwhile from counting as an unhandled rejection.
  first.catch(() => undefined);
  let turn = 1;
  try {
    turn = (await options.save()) ?? 1;
  } catch (error) {
    controller.abort(new Error('the run could not be saved'));
    await first.catch(() => undefined);
    await source.return(undefined);
    signal.removeEventListener('abort', forward);
    throw error;
  }

  const answers: Record<string, Answer> = {};
  for (const instance of arena.instances) answers[instance.id] = { response: '', metrics: null, error: null };
  const ended = new Set<string>();
  let failed = false;
  let started = false;
  let finishing: Promise<void> | undefined;
  // Once, from whichever comes first: the consumer's end, or a client that left before it began.
  const finish = (completed: boolean) =>
    (finishing ??= (async () => {
      // Stops whatever still runs when the consumer left early (the client disconnected).
      await source.return(undefined);
      signal.removeEventListener('abort', forward);
      for (const id of Object.keys(answers)) if (!ended.has(id)) answers[id]!.error = 'cancelled';
      const status: RunStatus = !completed || controller.signal.aborted ? 'partial' : failed ? 'error' : 'done';
      await options.runs.finish(options.runId, status, answers, turn).catch(options.onFinishError);
    })());
  async function* events(): AsyncGenerator<ArenaEvent> {
    let completed = false;
    try {
      for (let step = await first; !step.done; step = await source.next()) {
        const event = step.value;
        const answer = answers[event.instance.id]!;
        if (event.type === 'token') answer.response += event.text;
        else {
          ended.add(event.instance.id);
          answer.metrics = event.metrics ?? null;
          if (event.type === 'error') {
            answer.error = event.error;
            failed = true;
          }
        }
        yield event;
      }
      completed = true;
    } finally {
      await finish(completed);
    }
  }
  const generator = events();
  // A response torn down before its body was read ends the generator without running its body, nor
  // its `finally`: ending it then stops the generations and finishes the run here instead.
  const endUnstarted = async () => {
    if (started) return;
    controller.abort(new Error('the response ended before it was read'));
    await finish(false);
  };
  const iterator: AsyncIterableIterator<ArenaEvent> = {
    next: () => {
      started = true;
      return generator.next();
    },
    return: async (value?: unknown) => {
      await endUnstarted();
      return generator.return(value as undefined);
    },
    throw: async (error?: unknown) => {
      await endUnstarted();
      return generator.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return { runId: options.runId, events: iterator };
}

/**
 * `source` with each value mapped. Unlike a wrapping generator, ending it (return/throw) always reaches
 * the source, even before the first value was asked for: a generator never started ignores both.
 */
export function mapIterator<T, U>(source: AsyncIterableIterator<T>, map: (value: T) => U): AsyncIterableIterator<U> {
  const done = (): IteratorResult<U> => ({ done: true, value: undefined });
  return {
    next: async () => {
      const step = await source.next();
      return step.done ? done() : { done: false, value: map(step.value) };
    },
    return: async () => {
      await source.return?.();
      return done();
    },
    throw: async (error?: unknown) => {
      if (source.throw) await source.throw(error);
      return done();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The API key a run belongs to; the admin token and an open server own nothing (they see all). */
export function ownerOf(principal: Principal | null | undefined): string | null {
  return principal?.kind === 'key' ? principal.keyId : null;
}

/** A caller with an API key sees only its own runs and battles. */
export function maySee(principal: Principal | null | undefined, owner: string | null): boolean {
  return principal?.kind !== 'key' || principal.keyId === owner;
}

/** The key's model allow-list, for requests whose models are not in their body (pools, re-runs). */
export function mayUseModel(principal: Principal | null | undefined, model: string): boolean {
  return principal?.kind !== 'key' || ApiKeys.allows(principal, model);
}

export function notAllowedMessage(model: string): string {
  return `This API key is not allowed to use model '${model}'`;
}

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

export type ExportFormat = 'json' | 'csv' | 'md';

export const EXPORT_TYPES: Record<ExportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
};

const SETTINGS = ['temperature', 'top_p', 'top_k', 'repeat_penalty', 'num_predict', 'seed'] as const;

function visible(instance: ModelInstance | HiddenInstance): instance is ModelInstance {
  return !('hidden' in instance);
}

/** RFC 4180 quoting; text a spreadsheet would run as a formula (=, +, -, @) is prefixed with '. */
function csvCell(value: unknown, text = false): string {
  if (value === null || value === undefined) return '';
  let cell = String(value);
  if (text && /^[=+\-@\t\r]/.test(cell)) cell = `'${cell}`;
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

/** The question a turn asked an instance: the last user message of the conversation it was sent. */
function turnPrompt(turn: TurnView, instanceId: string): string {
  const history = turn.histories?.[instanceId] ?? turn.history;
  return [...history].reverse().find((m) => m.role === 'user')?.content ?? '';
}

/** One row per instance and turn; `turn` is last so that the columns readers knew keep their places. */
function toCsv(run: RunView): string {
  const header = ['run_id', 'created_at', 'kind', 'status', 'instance_id', 'model', ...SETTINGS, 'system', 'prompt', 'response', 'tokens', 'duration_s', 'tokens_per_sec', 'ttft_s', 'error', 'winner', 'turn'];
  const lines = [header.join(',')];
  for (const turn of run.turns) for (const instance of run.instances) {
    const answer = turn.answers[instance.id];
    const settings = visible(instance) ? instance : undefined;
    lines.push(
      [
        csvCell(run.id),
        csvCell(turn.created_at),
        csvCell(run.kind),
        csvCell(turn.status),
        csvCell(instance.id, true),
        csvCell(settings?.model, true),
        ...SETTINGS.map((key) => csvCell(settings?.[key])),
        csvCell(settings?.system, true),
        csvCell(turnPrompt(turn, instance.id), true),
        csvCell(answer?.response, true),
        csvCell(answer?.metrics?.tokens),
        csvCell(answer?.metrics?.duration_s),
        csvCell(answer?.metrics?.tokens_per_sec),
        csvCell(answer?.metrics?.ttft_s),
        csvCell(answer?.error, true),
        csvCell(run.battle?.winner),
        csvCell(turn.turn),
      ].join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** A fence longer than any run of backticks in the text, so model output cannot close it. */
function fenced(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text}\n${fence}`;
}

const mdCell = (value: unknown) => String(value ?? '').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function markdownAnswers(out: string[], run: RunView, turn: TurnView, heading: string): void {
  for (const instance of run.instances) {
    const answer = turn.answers[instance.id];
    const metrics = answer?.metrics;
    out.push(`${heading} ${instance.id}`, '');
    if (metrics) out.push(`${metrics.tokens} tokens in ${metrics.duration_s} s (${metrics.tokens_per_sec} tokens/s, first token after ${metrics.ttft_s ?? '-'} s)`, '');
    if (answer?.error) out.push(`Error: ${mdCell(answer.error)}`, '');
    out.push(fenced(answer?.response ?? ''), '');
  }
}

/**
 * The conversation the first turn was sent, the instances, then the answers: a run of several turns
 * gives each later turn its question and its answers in order.
 */
function toMarkdown(run: RunView): string {
  const out: string[] = [`# ${run.kind === 'battle' ? 'Battle' : 'Comparison'} ${run.id}`, ''];
  out.push(`- Created: ${run.created_at}`, `- Status: ${run.status}`);
  if (run.turns.length > 1) out.push(`- Turns: ${run.turns.length} (latest ${run.updated_at})`);
  if (run.rerun_of) out.push(`- Re-run of: ${run.rerun_of}`);
  if (run.battle) out.push(`- Vote: ${run.battle.winner ?? 'not yet voted'}`);
  out.push('', '## Conversation', '');
  const first = run.turns[0];
  for (const message of first?.history ?? run.history) out.push(`**${message.role}**:`, '', fenced(message.content), '');
  out.push('## Instances', '', `| id | model | ${SETTINGS.join(' | ')} | system |`, `|${' --- |'.repeat(SETTINGS.length + 3)}`);
  for (const instance of run.instances) {
    const settings = visible(instance) ? instance : undefined;
    out.push(`| ${mdCell(instance.id)} | ${mdCell(settings?.model ?? '(hidden until voted)')} | ${SETTINGS.map((k) => mdCell(settings?.[k])).join(' | ')} | ${mdCell(settings?.system)} |`);
  }
  if (run.turns.length <= 1) {
    out.push('', '## Answers', '');
    markdownAnswers(out, run, first ?? { turn: 1, status: run.status, created_at: run.created_at, finished_at: run.finished_at, history: run.history, histories: run.histories, answers: run.answers }, '###');
    return out.join('\n');
  }
  for (const turn of run.turns) {
    out.push('', `## Turn ${turn.turn}`, '', `- Asked: ${turn.created_at}`, `- Status: ${turn.status}`, '');
    if (turn.turn > 1) out.push('**user**:', '', fenced(turnPrompt(turn, '')), '');
    markdownAnswers(out, run, turn, '###');
  }
  return out.join('\n');
}

export function exportRun(run: RunView, format: ExportFormat): string {
  if (format === 'csv') return toCsv(run);
  if (format === 'md') return toMarkdown(run);
  return JSON.stringify(run, null, 2) + '\n';
}
