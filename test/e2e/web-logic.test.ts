import { describe, expect, it } from 'vitest';
import { instanceId, INSTANCE_DEFAULTS } from '../../src/core/arena.js';
import { defaultSettings, instanceKey, SETTINGS } from '../../web/src/components/arena-types.js';
import { expandGrid, parseNumberList } from '../../web/src/components/GridHelper.js';
import { historyOf, staticColumn } from '../../web/src/components/useColumns.js';

/** The web app's own logic, where it must agree with the server or keep a conversation well-formed. */

describe('instance settings in the browser', () => {
  it('uses the server defaults and names an instance exactly as the server does (SPEC rule 9)', () => {
    const settings = defaultSettings('llama3.2:1b-q4');
    for (const s of SETTINGS) expect(settings[s.key]).toBe(INSTANCE_DEFAULTS[s.key]);
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
