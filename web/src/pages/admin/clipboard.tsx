import { useState } from 'react';

/**
 * Copies text with the asynchronous clipboard API, which needs a secure context (https or localhost)
 * and the user's gesture; where it is missing or refused, falls back to the older copy command on a
 * hidden text area. Answers whether either worked, so the caller can offer a manual selection instead.
 */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}

/** A copy button that says whether it worked; `onFailed` lets the caller select the text instead. */
export function CopyButton({ text, label = 'Copy', onFailed }: { text: () => string; label?: string; onFailed?: () => void }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <button
      type="button"
      onClick={async () => {
        const ok = await copyText(text());
        setState(ok ? 'copied' : 'failed');
        if (!ok) onFailed?.();
        window.setTimeout(() => setState('idle'), 2500);
      }}
    >
      {state === 'copied' ? 'Copied ✓' : state === 'failed' ? 'Select and press Ctrl+C' : label}
    </button>
  );
}
