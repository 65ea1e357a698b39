import { useCallback, useMemo, useRef, useState } from 'react';
import { apiFetch, readNdjson } from '../api.js';
import type { ChatMessage, Metrics, StopReason, StreamLine } from './arena-types.js';

/** One exchange of a column's conversation: the user's prompt and this column's answer to it. */
export interface Turn {
  prompt: string;
  answer: string;
  metrics: Metrics | null;
  error: string | null;
  /** Why the answer ended, as the server said (absent on saved runs and older servers). */
  reason?: StopReason;
  /** How many of the oldest exchanges the server left out so that the conversation fit the context. */
  trimmed?: number;
}

/** A column's conversation and, while it streams, what the live metrics are computed from. */
export interface Column {
  turns: Turn[];
  streaming: boolean;
  /** performance.now() when the request was sent and when its first token arrived. */
  startedAt: number;
  firstTokenAt: number | null;
  /** Token lines received so far in the current turn (the server's count comes with `done`). */
  liveTokens: number;
  /**
   * Seconds from the first token to the latest one on the server's clock (token lines' `eval_s`), the
   * clock the final decode rate is measured by; null when the server does not send it (battles).
   */
  liveEvalS: number | null;
}

export const STOPPED = 'stopped';

function lastTurn(column: Column): Turn {
  return column.turns[column.turns.length - 1]!;
}

function withLastTurn(column: Column, change: Partial<Turn>, rest: Partial<Column> = {}): Column {
  return { ...column, ...rest, turns: [...column.turns.slice(0, -1), { ...lastTurn(column), ...change }] };
}

/** The messages to send a column for its next turn: its own past prompts and answers, then the prompt. */
export function historyOf(column: Column | undefined, prompt: string): ChatMessage[] {
  const history: ChatMessage[] = [];
  for (const turn of column?.turns ?? []) {
    // A turn that failed before answering anything is left out, so the conversation stays well-formed.
    if (turn.error && !turn.answer) continue;
    history.push({ role: 'user', content: turn.prompt }, { role: 'assistant', content: turn.answer });
  }
  history.push({ role: 'user', content: prompt });
  return history;
}

export interface StreamOptions {
  /** The column a stream line belongs to (undefined: not one of ours, ignored). */
  columnOf: (line: StreamLine) => string | undefined;
  signal: AbortSignal;
  /** Called with the response before its body is read (headers such as X-Run-Id, X-Battle-Id). */
  onResponse?: (response: Response) => void;
}

/**
 * The state of a row of streaming columns (compare, battle, run page), keyed by column, and `stream`,
 * which sends one NDJSON request and routes each line into its column as it arrives. A request that
 * fails shows its error in every column it was feeding; a stop marks them stopped.
 */
export function useColumns() {
  const [columns, setColumns] = useState<Record<string, Column>>({});
  const current = useRef(columns);
  current.current = columns;

  const update = useCallback((keys: string[], change: (column: Column) => Column) => {
    setColumns((prev) => {
      const next = { ...prev };
      for (const key of keys) if (next[key]) next[key] = change(next[key]);
      return next;
    });
  }, []);

  /** Starts a turn in every listed column; `replace` answers the column's latest prompt again instead. */
  const begin = useCallback((keys: string[], prompt: string, replace = false) => {
    const now = performance.now();
    setColumns((prev) => {
      const next = { ...prev };
      for (const key of keys) {
        const earlier = prev[key]?.turns ?? [];
        const kept = replace ? earlier.slice(0, -1) : earlier;
        const turns = [...kept, { prompt, answer: '', metrics: null, error: null }];
        next[key] = { turns, streaming: true, startedAt: now, firstTokenAt: null, liveTokens: 0, liveEvalS: null };
      }
      return next;
    });
  }, []);

  const apply = useCallback(
    (key: string, line: StreamLine) => {
      const now = performance.now();
      update([key], (column) => {
        if (!column.streaming) return column;
        if (!line.done) {
          return withLastTurn(column, { answer: lastTurn(column).answer + line.token }, {
            firstTokenAt: column.firstTokenAt ?? now,
            liveTokens: column.liveTokens + 1,
            liveEvalS: typeof line.eval_s === 'number' ? line.eval_s : column.liveEvalS,
          });
        }
        const ended: Partial<Turn> = { metrics: line.metrics ?? null, error: line.error ?? null, reason: line.done_reason, trimmed: line.trimmed_turns };
        return withLastTurn(column, ended, { streaming: false });
      });
    },
    [update],
  );

  /** Ends every listed column still streaming, with this error. */
  const fail = useCallback(
    (keys: string[], error: string) =>
      update(keys, (column) => (column.streaming ? withLastTurn(column, { error, reason: error === STOPPED ? 'cancelled' : 'error' }, { streaming: false }) : column)),
    [update],
  );

  const stream = useCallback(
    async (path: string, body: unknown, keys: string[], options: StreamOptions): Promise<Response | null> => {
      try {
        const response = await apiFetch(path, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body), signal: options.signal });
        options.onResponse?.(response);
        await readNdjson<StreamLine>(response, (line) => {
          const key = options.columnOf(line);
          if (key !== undefined) apply(key, line);
        });
        fail(keys, 'the stream ended before this answer was complete');
        return response;
      } catch (error) {
        fail(keys, options.signal.aborted ? STOPPED : (error as Error).message);
        return null;
      }
    },
    [apply, fail],
  );

  const reset = useCallback((next: Record<string, Column> = {}) => setColumns(next), []);
  const remove = useCallback((key: string) => setColumns(({ [key]: _gone, ...rest }) => rest), []);
  const streaming = useMemo(() => Object.values(columns).some((c) => c.streaming), [columns]);

  return { columns, current, begin, stream, fail, reset, remove, streaming };
}

/** A finished column built from saved answers (the run page). */
export function staticColumn(turns: Turn[]): Column {
  return { turns, streaming: false, startedAt: 0, firstTokenAt: null, liveTokens: 0, liveEvalS: null };
}
