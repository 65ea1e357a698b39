import { useEffect, useState } from 'react';
import type { Column } from './useColumns.js';

/** Re-renders every `ms` while `active`, so elapsed times move even when no token arrives. */
function useTicker(active: boolean, ms = 200): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
}

/** Below this much decoding time a rate is mostly noise (two tokens 10 ms apart read as 200 tok/s). */
const SETTLED_S = 0.25;

/**
 * The live decode rate, defined as the final one is: tokens since the first one over the time since
 * the first one, both on the server's clock (token lines carry it). Timing the lines as they arrive
 * in the browser instead reads far too high whenever the network or a busy page delivers a burst.
 */
export function liveRate(column: Pick<Column, 'liveTokens' | 'liveEvalS'>): number | null {
  if (column.liveEvalS === null || column.liveEvalS < SETTLED_S) return null;
  return column.liveTokens / column.liveEvalS;
}

const seconds = (s: number | null | undefined) => (s === null || s === undefined ? '–' : `${s.toFixed(2)} s`);

/**
 * Time to first token, tokens/s and token count of a column's latest answer: measured in the browser
 * while it streams, then the server's own numbers once the answer is done.
 */
export function MetricsBadge({ column }: { column: Column }) {
  useTicker(column.streaming);
  const turn = column.turns[column.turns.length - 1];
  if (!turn) return null;
  let ttft: number | null;
  let tps: number | null;
  let tokens: number;
  if (column.streaming || !turn.metrics) {
    const now = performance.now();
    ttft = column.firstTokenAt === null ? null : (column.firstTokenAt - column.startedAt) / 1000;
    tokens = column.liveTokens;
    tps = liveRate(column);
    if (column.streaming && ttft === null) ttft = (now - column.startedAt) / 1000;
  } else {
    // The decode rate, as the live figure was; runs saved before it existed have only tokens_per_sec.
    const metrics: Partial<typeof turn.metrics> = turn.metrics;
    ({ ttft_s: ttft = null, tokens = 0 } = metrics);
    tps = metrics.eval_tokens_per_sec ?? metrics.tokens_per_sec ?? null;
  }
  const waiting = column.streaming && column.firstTokenAt === null;
  return (
    <div className={`metrics${column.streaming ? ' live' : ''}`} data-testid="metrics">
      <span title="time to first token">
        TTFT <b data-metric="ttft">{waiting ? `${seconds(ttft)}…` : seconds(ttft)}</b>
      </span>
      <span title="tokens per second">
        <b data-metric="tps">{tps === null ? '–' : tps.toFixed(1)}</b> tok/s
      </span>
      <span title="tokens generated">
        <b data-metric="tokens">{tokens}</b> tokens
      </span>
    </div>
  );
}
