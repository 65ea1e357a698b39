import type { EvalView } from '../../domain/evals.js';

/** An evaluation as the API shows it, and its JSON, CSV and Markdown exports. */

/** RFC 4180 quoting; text a spreadsheet would run as a formula (=, +, -, @) is prefixed with '. */
function csvCell(value: unknown, text = false): string {
  if (value === null || value === undefined) return '';
  let cell = String(value);
  if (text && /^[=+\-@\t\r]/.test(cell)) cell = `'${cell}`;
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

function promptText(view: EvalView, index: number): string {
  return view.prompts[index]?.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
}

function toCsv(view: EvalView): string {
  const header = ['eval_id', 'prompt_index', 'prompt', 'instance_id', 'model', 'repeat', 'pass', 'failed_assertions', 'answer', 'tokens', 'duration_s', 'ttft_s', 'tokens_per_sec', 'judge_score', 'error'];
  const models = new Map(view.instances.map((i) => [i.id, i.model]));
  const lines = [header.join(',')];
  for (const cell of view.cells) {
    lines.push(
      [
        csvCell(view.id),
        csvCell(cell.prompt_index),
        csvCell(promptText(view, cell.prompt_index), true),
        csvCell(cell.instance_id, true),
        csvCell(models.get(cell.instance_id), true),
        csvCell(cell.repeat),
        csvCell(cell.pass),
        csvCell(cell.assertions.filter((a) => !a.pass).map((a) => a.type).join(' '), true),
        csvCell(cell.answer, true),
        csvCell(cell.metrics?.tokens),
        csvCell(cell.metrics?.duration_s),
        csvCell(cell.metrics?.ttft_s),
        csvCell(cell.metrics?.tokens_per_sec),
        csvCell(cell.judge?.score),
        csvCell(cell.error, true),
      ].join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

const mdCell = (value: unknown) => String(value ?? '').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

/** The summary table the CLI prints and the Markdown export opens with. */
export function summaryTable(view: EvalView): string {
  const lines = ['| configuration | pass rate | 95% interval | mean latency (s) | p95 latency (s) | mean TTFT (s) | tokens/s | judge |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const row of view.summary) {
    const judge = row.judge?.rating == null ? '' : `${row.judge.rating} [${row.judge.rating_low}, ${row.judge.rating_high}]`;
    const verdict = row.meets_threshold === false ? ' ✗' : row.meets_threshold ? ' ✓' : '';
    lines.push(
      `| ${mdCell(row.instance_id)} | ${percent(row.pass_rate)} (${row.passed}/${row.cells})${verdict} | ${percent(row.pass_rate_low)}–${percent(row.pass_rate_high)} | ${row.latency_mean_s ?? ''} | ${row.latency_p95_s ?? ''} | ${row.ttft_mean_s ?? ''} | ${row.tokens_per_sec_mean ?? ''} | ${judge} |`,
    );
  }
  return lines.join('\n');
}

function toMarkdown(view: EvalView): string {
  const out = [`# Evaluation: ${mdCell(view.name)}`, '', `- Id: ${view.id}`, `- Status: ${view.status} (${view.progress.done}/${view.progress.total})`, `- Created: ${view.created_at}`];
  if (view.threshold) out.push(`- Threshold: pass rate ≥ ${view.threshold.pass_rate} — ${view.passed === null ? 'not decided' : view.passed ? 'met' : 'NOT met'}`);
  if (view.judge) out.push(`- Judge: ${view.judge.mode}, ${view.judge.model}: ${mdCell(view.judge.rubric)}`);
  out.push('', '## Summary', '', summaryTable(view), '', '## Cells', '');
  out.push('| prompt | configuration | repeat | pass | answer |', '| --- | --- | --- | --- | --- |');
  for (const cell of view.cells) {
    const answer = cell.error ? `error: ${cell.error}` : cell.answer.length > 200 ? `${cell.answer.slice(0, 199)}…` : cell.answer;
    out.push(`| ${cell.prompt_index}: ${mdCell(promptText(view, cell.prompt_index).slice(0, 60))} | ${mdCell(cell.instance_id)} | ${cell.repeat} | ${cell.pass ? 'pass' : 'fail'} | ${mdCell(answer)} |`);
  }
  return out.join('\n') + '\n';
}

export type EvalExportFormat = 'json' | 'csv' | 'md';

export function exportEval(view: EvalView, format: EvalExportFormat): string {
  if (format === 'csv') return toCsv(view);
  if (format === 'md') return toMarkdown(view);
  return JSON.stringify(view, null, 2) + '\n';
}
