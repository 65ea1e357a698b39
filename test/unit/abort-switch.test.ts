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
    const stop = new AbortSwitch();
    const heard: string[] = [];
    const b = () => heard.push('b');
    stop.signal.addEventListener('abort', () => {
      heard.push('a');
      stop.signal.removeEventListener('abort', b);
    });
    stop.signal.addEventListener('abort', b);
    stop.abort();
    expect(heard).toEqual(['a']);
    const node = new AbortController();
    const nodeHeard: string[] = [];
    const nodeB = () => nodeHeard.push('b');
    node.signal.addEventListener('abort', () => {
      nodeHeard.push('a');
      node.signal.removeEventListener('abort', nodeB);
    });
    node.signal.addEventListener('abort', nodeB);
    node.abort();
    expect(heard).toEqual(nodeHeard);
  });
});
