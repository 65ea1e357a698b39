import type { ReactNode } from 'react';
import type { StopReason } from './arena-types.js';
import { Markdown } from './Markdown.js';
import { MetricsBadge } from './MetricsBadge.js';
import { STOPPED, type Column, type Turn } from './useColumns.js';
import { wordDiff } from './wordDiff.js';

/** Why an answer ended, in words; `length` names the limit the instance set. */
function stopText(reason: StopReason, limit?: number): string {
  switch (reason) {
    case 'stop':
      return 'Finished: the model ended its answer.';
    case 'length':
      return `Cut off: reached the answer length limit${limit && limit > 0 ? ` (${limit} tokens)` : ''}.`;
    case 'context':
      return "Cut off: the model's context is full. A follow-up will leave out the oldest turns.";
    case 'cancelled':
      return 'Stopped.';
    case 'error':
      return 'Failed.';
  }
}

function TurnEnd({ turn, limit }: { turn: Turn; limit?: number }) {
  const parts: ReactNode[] = [];
  if (turn.trimmed) {
    parts.push(
      <p className="notice" key="trim" data-testid="trimmed">
        The conversation no longer fit the model's context: the oldest {turn.trimmed === 1 ? 'turn was' : `${turn.trimmed} turns were`} left out of this answer's prompt.
      </p>,
    );
  }
  if (turn.error && turn.error !== STOPPED) {
    parts.push(
      <p className="error" role="alert" data-testid="column-error" key="error">
        {turn.error}
      </p>,
    );
  } else if (turn.reason || turn.error === STOPPED) {
    const reason = turn.reason ?? 'cancelled';
    parts.push(
      <p className={`stop-reason ${reason}`} data-testid="stop-reason" data-reason={reason} key="reason">
        {stopText(reason, limit)}
      </p>,
    );
  }
  return <>{parts}</>;
}

/** The latest answer of this column against another's, word by word. */
function DiffView({ from, to, label }: { from: string; to: string; label: string }) {
  return (
    <div className="diff" data-testid="diff">
      <p className="hint">
        Compared with {label}: <del>only there</del> <ins>only here</ins>
      </p>
      <p className="diff-text">
        {wordDiff(from, to).map((part, i) =>
          part.kind === 'same' ? <span key={i}>{part.text}</span> : part.kind === 'added' ? <ins key={i}>{part.text}</ins> : <del key={i}>{part.text}</del>,
        )}
      </p>
    </div>
  );
}

/**
 * One contestant's conversation: every turn's prompt and answer (Markdown), the answer streaming in,
 * why each answer ended, live metrics (hidden in a blind battle until the vote), and the error of a
 * turn that failed, shown here rather than for the whole page.
 */
export function StreamColumn({ title, subtitle, column, actions, testId, hideMetrics, limit, diff }: {
  title: ReactNode;
  subtitle?: ReactNode;
  column: Column | undefined;
  actions?: ReactNode;
  testId?: string;
  /** A blind battle: speed and length could tell the contestants apart before the vote. */
  hideMetrics?: boolean;
  /** The instance's num_predict, named when an answer reached it. */
  limit?: number;
  diff?: { label: string; text: string } | null;
}) {
  const turns = column?.turns ?? [];
  const latest = turns[turns.length - 1];
  return (
    <section className={`column${column?.streaming ? ' streaming' : ''}`} data-testid={testId ?? 'column'} aria-busy={column?.streaming ?? false}>
      <header className="column-head">
        <div className="column-title">
          <strong>{title}</strong>
          {subtitle && <small>{subtitle}</small>}
        </div>
        {actions && <div className="column-actions">{actions}</div>}
      </header>
      <div className="column-body">
        {turns.length === 0 && <p className="empty">No answer yet.</p>}
        {turns.map((turn, index) => {
          const last = index === turns.length - 1;
          return (
            <div className="turn" key={index}>
              <p className="turn-prompt">{turn.prompt}</p>
              <div className="col-answer" data-testid={last ? 'answer' : undefined}>
                <Markdown text={turn.answer} />
                {last && column?.streaming && <span className="cursor" aria-hidden="true" />}
              </div>
              {!(last && column?.streaming) && <TurnEnd turn={turn} limit={limit} />}
            </div>
          );
        })}
        {diff && latest && !column?.streaming && <DiffView from={diff.text} to={latest.answer} label={diff.label} />}
      </div>
      {column && turns.length > 0 && !hideMetrics && <MetricsBadge column={column} />}
    </section>
  );
}
