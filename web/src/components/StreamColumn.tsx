import type { ReactNode } from 'react';
import { Markdown } from './Markdown.js';
import { MetricsBadge } from './MetricsBadge.js';
import { STOPPED, type Column } from './useColumns.js';

/**
 * One contestant's conversation: every turn's prompt and answer (Markdown), the answer streaming in,
 * live metrics, and the error of a turn that failed, shown here rather than for the whole page.
 */
export function StreamColumn({ title, subtitle, column, actions, testId }: {
  title: ReactNode;
  subtitle?: ReactNode;
  column: Column | undefined;
  actions?: ReactNode;
  testId?: string;
}) {
  const turns = column?.turns ?? [];
  return (
    <section className={`column${column?.streaming ? ' streaming' : ''}`} data-testid={testId ?? 'column'} aria-busy={column?.streaming ?? false}>
      <header className="column-head">
        <div className="column-title">
          <strong>{title}</strong>
          {subtitle && <small>{subtitle}</small>}
        </div>
        {actions}
      </header>
      <div className="column-body">
        {turns.length === 0 && <p className="empty">No answer yet.</p>}
        {turns.map((turn, index) => {
          const last = index === turns.length - 1;
          return (
            <div className="turn" key={index}>
              {turns.length > 1 && <p className="turn-prompt">{turn.prompt}</p>}
              <div className="col-answer" data-testid={last ? 'answer' : undefined}>
                <Markdown text={turn.answer} />
                {last && column?.streaming && <span className="cursor" aria-hidden="true" />}
              </div>
              {turn.error === STOPPED && <p className="notice">Stopped.</p>}
              {turn.error && turn.error !== STOPPED && (
                <p className="error" role="alert" data-testid="column-error">
                  {turn.error}
                </p>
              )}
            </div>
          );
        })}
      </div>
      {column && turns.length > 0 && <MetricsBadge column={column} />}
    </section>
  );
}
