import { describe, expect, it } from 'vitest';
import { AbortSwitch } from '../../src/shared/abort-switch.js';

/** The light abort switch behaves as an AbortController and its signal do, where the gateway relies on them. */
describe('AbortSwitch', () => {
  it('runs each listener once, with the first reason given, and ignores later aborts', () => {
    const stop = new AbortSwitch();
    const heard: unknown[] = [];
    stop.signal.addEventListener('abort', () => heard.push(stop.signal.reason), { once: true });
    stop.signal.addEventListener('abort', () => heard.push('second'));
    expect(stop.signal.aborted).toBe(false);
    const reason = new Error('client disconnected');
    stop.abort(reason);
    stop.abort(new Error('again'));
    expect(heard).toEqual([reason, 'second']);
    expect(stop.signal.aborted).toBe(true);
    expect(stop.signal.reason).toBe(reason);
  });

  it('forgets a removed listener, never runs one added after the abort, and gives an AbortError by default', () => {
    const stop = new AbortSwitch();
    let calls = 0;
    const listener = () => calls++;
    stop.signal.addEventListener('abort', listener);
    stop.signal.removeEventListener('abort', listener);
    stop.abort();
    stop.signal.addEventListener('abort', listener);
    expect(calls).toBe(0);
    expect(stop.signal.reason).toBeInstanceOf(DOMException);
    expect((stop.signal.reason as DOMException).name).toBe('AbortError');
  });

  it('skips a listener that an earlier one removed during the abort, as an AbortSignal does', () => {
    /** What each listener heard when the first one removes the second during the abort. */
    const heardWithRemoval = (stop: AbortSwitch | AbortController) => {
      const heard: string[] = [];
      const second = () => heard.push('second');
      stop.signal.addEventListener('abort', () => {
        heard.push('first');
        stop.signal.removeEventListener('abort', second);
      });
      stop.signal.addEventListener('abort', second);
      stop.abort();
      return heard;
    };
    expect(heardWithRemoval(new AbortSwitch())).toEqual(['first']);
    expect(heardWithRemoval(new AbortSwitch())).toEqual(heardWithRemoval(new AbortController()));
  });
});
