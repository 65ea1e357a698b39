import { describe, expect, it } from 'vitest';
import { instanceId, INSTANCE_DEFAULTS } from '../../src/arena/arena.js';
import { defaultSettings, instanceKey, PAGE_NUM_PREDICT, SETTINGS } from '../../web/src/components/arena-types.js';
import { liveRate } from '../../web/src/components/MetricsBadge.js';
import { wordDiff } from '../../web/src/components/wordDiff.js';
import { expandGrid, parseNumberList } from '../../web/src/components/GridHelper.js';
import { historyOf, staticColumn } from '../../web/src/components/useColumns.js';

/** The web app's own logic, where it must agree with the server or keep a conversation well-formed. */

describe('instance settings in the browser', () => {
  it('uses the server defaults, but a bounded answer length, and names an instance exactly as the server does', () => {
    const settings = defaultSettings('llama3.2:1b-q4');
    for (const s of SETTINGS) if (s.key !== 'num_predict') expect(settings[s.key]).toBe(INSTANCE_DEFAULTS[s.key]);
    // The API's -1 runs an answer until the context is full; the page leaves room for a follow-up.
    expect(INSTANCE_DEFAULTS.num_predict).toBe(-1);
    expect(settings.num_predict).toBe(PAGE_NUM_PREDICT);
    expect(PAGE_NUM_PREDICT).toBeGreaterThan(0);
    expect(instanceKey(settings)).toBe(instanceId(settings));
    const varied = { ...settings, temperature: 1.25, top_p: 0.5, top_k: 7, repeat_penalty: 1.3, num_predict: 64, seed: 42 };
    expect(instanceKey(varied)).toBe(instanceId(varied));
    expect(instanceKey(varied)).toBe('llama3_2_1b_q4__1.25_0.5_7_1.3_64_42');
  });
});

describe('grid helper', () => {
  it('expands models × temperatures × seeds, other settings at their defaults', () => {
    const grid = expandGrid(['a:1', 'b:2'], [0.2, 0.9], [1, 2, 3]);
    expect(grid).toHaveLength(12);
    expect(grid[0]).toEqual({ ...defaultSettings('a:1'), temperature: 0.2, seed: 1 });
    expect(grid[11]).toEqual({ ...defaultSettings('b:2'), temperature: 0.9, seed: 3 });
    expect(new Set(grid.map(instanceKey)).size).toBe(12);
  });

  it('reads lists separated by commas or spaces and names what is not a number', () => {
    expect(parseNumberList('0.2, 0.7 1.2;2')).toEqual([0.2, 0.7, 1.2, 2]);
    expect(parseNumberList('  ')).toEqual([]);
    expect(parseNumberList('0.5, warm')).toBe('not a number: warm');
  });
});

describe('per-column history', () => {
  it("sends a column its own past turns, leaving out a turn that failed before answering", () => {
    const column = staticColumn([
      { prompt: 'Hi', answer: 'Hello!', metrics: null, error: null },
      { prompt: 'Again', answer: '', metrics: null, error: 'model crashed' },
      { prompt: 'More', answer: 'Partial', metrics: null, error: 'stopped' },
    ]);
    expect(historyOf(column, 'Next')).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'More' },
      { role: 'assistant', content: 'Partial' },
      { role: 'user', content: 'Next' },
    ]);
    expect(historyOf(undefined, 'First')).toEqual([{ role: 'user', content: 'First' }]);
  });
});

describe('word diff', () => {
  it('marks the words only in one answer and gives both texts back', () => {
    const from = 'The quick brown fox jumps over the lazy dog.';
    const to = 'The quick red fox leaps over the lazy dog.';
    const parts = wordDiff(from, to);
    expect(parts.filter((p) => p.kind === 'removed').map((p) => p.text.trim())).toEqual(['brown', 'jumps']);
    expect(parts.filter((p) => p.kind === 'added').map((p) => p.text.trim())).toEqual(['red', 'leaps']);
    expect(parts.filter((p) => p.kind !== 'added').map((p) => p.text).join('')).toBe(from);
    expect(parts.filter((p) => p.kind !== 'removed').map((p) => p.text).join('')).toBe(to);
  });

  it('handles empty and identical answers', () => {
    expect(wordDiff('', 'new words')).toEqual([{ kind: 'added', text: 'new words' }]);
    expect(wordDiff('same text', 'same text')).toEqual([{ kind: 'same', text: 'same text' }]);
  });
});

describe('live decode rate', () => {
  it('is tokens over the server-clock seconds since the first token, as the final figure is', () => {
    expect(liveRate({ liveTokens: 50, liveEvalS: 2 })).toBe(25);
    // A burst that arrives at once in the browser does not change the server's clock.
    expect(liveRate({ liveTokens: 3, liveEvalS: 0.01 })).toBeNull();
    expect(liveRate({ liveTokens: 40, liveEvalS: null })).toBeNull();
  });
});
