import fs from 'node:fs';
import path from 'node:path';
import type { EvalView } from '../domain/evals.js';
import { summaryTable } from '../arena/evals/export.js';
import { readSuiteText } from '../arena/evals/suite.js';
import { readNdjson } from '../shared/ndjson.js';

/**
 * `ollama-arena eval suite.yaml`: runs a suite on a server (--server URL) or on a server started in
 * this process, shows a progress bar, prints the summary table, writes the export, and exits 0 when
 * every configuration meets the threshold, 1 when one does not (or the evaluation did not finish),
 * 2 on a usage or connection error.
 */

export const EXIT = { ok: 0, belowThreshold: 1, usage: 2 } as const;

export class UsageError extends Error {}

export interface EvalOptions {
  suite: string;
  server?: string;
  token?: string;
  threshold?: number;
  out?: string;
  format?: 'json' | 'csv' | 'md';
  quiet: boolean;
}

export const EVAL_USAGE = `Usage: ollama-arena eval <suite.yaml|suite.json> [options]

Runs an evaluation suite and exits 0 when every configuration's pass rate meets the threshold,
1 when one does not, 2 on a usage or connection error.

Options:
  --server URL       a running ollama-arena server (default: start one in this process,
                     configured by the environment: MODELS_DIR, DATA_DIR, OLLAMA_HOSTS...)
  --token TOKEN      API key or admin token (default: $OLLAMA_ARENA_TOKEN)
  --threshold RATE   minimum pass rate, 0..1 (overrides the suite's threshold.pass_rate)
  --out FILE         write the export there (format from the extension: .json, .csv, .md)
  --format FORMAT    json, csv or md (for --out without a known extension)
  --quiet            no progress bar
`;

export function parseEvalArgs(args: string[], env: NodeJS.ProcessEnv = process.env): EvalOptions {
  const options: Partial<EvalOptions> & { quiet: boolean } = { quiet: false, token: env.OLLAMA_ARENA_TOKEN };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const next = args[++i];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    if (arg === '--server') options.server = value().replace(/\/+$/, '');
    else if (arg === '--token') options.token = value();
    else if (arg === '--out') options.out = value();
    else if (arg === '--quiet') options.quiet = true;
    else if (arg === '--threshold') {
      const rate = Number(value());
      if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new UsageError('--threshold must be a number between 0 and 1');
      options.threshold = rate;
    } else if (arg === '--format') {
      const format = value();
      if (format !== 'json' && format !== 'csv' && format !== 'md') throw new UsageError('--format must be json, csv or md');
      options.format = format;
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else if (options.suite === undefined) options.suite = arg;
    else throw new UsageError(`unexpected argument ${arg}`);
  }
  if (!options.suite) throw new UsageError('give the suite file');
  if (options.out && !options.format) {
    const extension = path.extname(options.out).slice(1);
    options.format = extension === 'csv' || extension === 'md' ? extension : 'json';
  }
  return options as EvalOptions;
}

function progressBar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  tty: boolean;
}

/** Runs the suite against `server`; resolves with the exit code. Connection failures throw. */
export async function runEvalCommand(options: EvalOptions, server: string, io: Io): Promise<number> {
  let text: string;
  try {
    text = fs.readFileSync(options.suite, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${options.suite}: ${(error as Error).message}`);
  }
  const document = readSuiteText(text);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) };
  const created = await fetch(`${server}/api/evals`, { method: 'POST', headers, body: JSON.stringify(document) });
  const answer = (await created.json().catch(() => ({}))) as { id?: string; error?: string };
  if (created.status !== 201 || !answer.id) throw new UsageError(`the server refused the suite (${created.status}): ${answer.error ?? 'no reason given'}`);
  const id = answer.id;
  io.err(`evaluation ${id} started: ${server}/evals/${id}\n`);

  const events = await fetch(`${server}/api/evals/${id}/events`, { headers });
  if (events.ok && events.body) {
    let shownStep = -1;
    for await (const event of readNdjson<{ type: string; progress?: { done: number; total: number } }>(events.body)) {
      if (event.progress && !options.quiet) {
        const { done, total } = event.progress;
        if (io.tty) io.err(`\r${progressBar(done, total)}`);
        else if (Math.floor((done / Math.max(1, total)) * 10) > shownStep || done === total) {
          shownStep = Math.floor((done / Math.max(1, total)) * 10);
          io.err(`${progressBar(done, total)}\n`);
        }
      }
      if (event.type === 'end') break;
    }
    if (io.tty && !options.quiet) io.err('\n');
  }
  const final = await fetch(`${server}/api/evals/${id}`, { headers });
  if (!final.ok) throw new Error(`could not read the evaluation (${final.status})`);
  const view = (await final.json()) as EvalView;

  io.out(`\n${view.name}: ${view.status} (${view.progress.done}/${view.progress.total})\n\n${summaryTable(view)}\n`);
  if (options.out) {
    const exported = await fetch(`${server}/api/evals/${id}/export?format=${options.format ?? 'json'}`, { headers });
    fs.writeFileSync(options.out, await exported.text());
    io.err(`wrote ${options.out}\n`);
  }
  if (view.status !== 'done') {
    io.out(`the evaluation ended ${view.status}${view.error ? `: ${view.error}` : ''}\n`);
    return EXIT.belowThreshold;
  }
  const threshold = options.threshold ?? view.threshold?.pass_rate;
  if (threshold === undefined) return EXIT.ok;
  const failing = view.summary.filter((row) => row.pass_rate < threshold);
  for (const row of failing) io.out(`✗ ${row.instance_id}: pass rate ${row.pass_rate} is below ${threshold}\n`);
  if (failing.length === 0) io.out(`✓ every configuration meets the pass rate ${threshold}\n`);
  return failing.length === 0 ? EXIT.ok : EXIT.belowThreshold;
}
