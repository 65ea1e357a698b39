import { useEffect, useRef, useState, type ReactNode } from 'react';

/**
 * A button for an action that cannot be undone: the first press asks inline (no modal to trap focus
 * in), the second does it. Focus moves to the confirmation and back, so a keyboard user never loses
 * their place.
 */
export function ConfirmButton({ label, question, confirmLabel, busy = false, disabled = false, onConfirm }: {
  label: string;
  question: ReactNode;
  confirmLabel: string;
  /** While the action (or another on the same thing) runs: nothing to press. */
  busy?: boolean;
  disabled?: boolean;
  onConfirm: () => Promise<void> | void;
}) {
  const [asking, setAsking] = useState(false);
  const confirm = useRef<HTMLButtonElement>(null);
  const start = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);
  useEffect(() => {
    if (asking) confirm.current?.focus();
    else if (wasAsking.current) start.current?.focus();
    wasAsking.current = asking;
  }, [asking]);

  if (!asking) {
    return (
      <button type="button" className="danger" ref={start} disabled={disabled || busy} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span
      className="confirm"
      onKeyDown={(e) => {
        if (e.key !== 'Escape') return;
        // Escape here only takes the question back, not whatever form or panel holds the button.
        e.preventDefault();
        setAsking(false);
      }}
    >
      <span className="confirm-question">{question}</span>
      <button
        type="button"
        className="danger"
        ref={confirm}
        disabled={busy}
        onClick={async () => {
          await onConfirm();
          setAsking(false);
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}
