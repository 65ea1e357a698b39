import { useState, type KeyboardEvent, type ReactNode } from 'react';

/** The shortcut label for the platform: ⌘ on Apple keyboards, Ctrl elsewhere. */
const SEND_SHORTCUT = /Mac|iPhone|iPad/.test(navigator.platform) ? '⌘+Enter' : 'Ctrl+Enter';

/**
 * The prompt field with Send (Ctrl/Cmd+Enter) and, while answers stream, Stop. It clears itself once
 * a prompt is sent; `extra` holds page-specific buttons (new conversation, new battle).
 */
export function PromptBox({ onSend, onStop, busy, disabled, placeholder, extra }: {
  onSend: (prompt: string) => void;
  onStop: () => void;
  busy: boolean;
  disabled?: boolean;
  placeholder?: string;
  extra?: ReactNode;
}) {
  const [prompt, setPrompt] = useState('');
  const canSend = !busy && !disabled && prompt.trim() !== '';
  const send = () => {
    if (!canSend) return;
    onSend(prompt.trim());
    setPrompt('');
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    }
  };
  return (
    <form
      className="prompt-box"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
    >
      <textarea
        value={prompt}
        onChange={(e) => setPrompt(e.target.value)}
        onKeyDown={onKeyDown}
        placeholder={placeholder ?? 'Type a prompt…'}
        aria-label="prompt"
        rows={3}
      />
      <div className="prompt-actions">
        {busy ? (
          <button type="button" className="stop" onClick={onStop}>
            Stop
          </button>
        ) : (
          <button type="submit" className="primary" disabled={!canSend} title={SEND_SHORTCUT}>
            Send <kbd>{SEND_SHORTCUT}</kbd>
          </button>
        )}
        {extra}
      </div>
    </form>
  );
}
