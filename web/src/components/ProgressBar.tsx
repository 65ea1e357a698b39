/**
 * A labelled progress bar; without a percent (size unknown yet) it shows as indeterminate. `text`
 * replaces the percentage (a finished download says how it ended).
 */
export function ProgressBar({ percent, label, text }: { percent: number | undefined; label: string; text?: string }) {
  const known = percent !== undefined;
  return (
    <div
      className={`progress${known ? '' : ' indeterminate'}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={known ? percent : undefined}
    >
      <div className="progress-fill" style={{ width: known ? `${percent}%` : undefined }} />
      <span className="progress-text">{text ?? (known ? `${percent.toFixed(1)}%` : '…')}</span>
    </div>
  );
}
