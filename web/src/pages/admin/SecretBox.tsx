import { useRef } from 'react';
import { CopyButton } from './clipboard.js';

/**
 * The one place a key's secret is ever rendered: right after it is created or rotated. The server keeps
 * only its hash, so once the admin closes the box the secret is gone from the page for good.
 */
export function SecretBox({ title, secret, onClose }: { title: string; secret: string; onClose: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const select = () => input.current?.select();
  return (
    <section className="secret-box" role="alert" aria-label="new API key">
      <h3>{title}</h3>
      <p>Copy it now: it is shown only this once, and the server keeps only a hash of it.</p>
      <div className="secret-row">
        <input ref={input} readOnly value={secret} aria-label="secret" data-testid="secret" onFocus={select} spellCheck={false} />
        <CopyButton text={() => secret} onFailed={select} />
      </div>
      <button type="button" className="secondary" onClick={onClose}>
        I have saved it
      </button>
    </section>
  );
}
