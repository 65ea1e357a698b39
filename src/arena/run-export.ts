import type { ModelInstance } from '../domain/arena.js';
import type { HiddenInstance, RunView, TurnView } from './run-views.js';

/** A run exported as JSON, CSV (one row per instance and turn) or Markdown. */

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
