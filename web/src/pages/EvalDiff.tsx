import { useState } from 'react';
import type { EvalView } from '../../../src/domain/evals.js';

/** Word-level longest common subsequence: which words of each side the other side lacks. */
function wordDiff(a: string, b: string): { left: [string, boolean][]; right: [string, boolean][] } {
  const x = a.split(/(\s+)/);
  const y = b.split(/(\s+)/);
  // Long answers would make the table large; past this size they are shown without highlights.
  if (x.length * y.length > 400_000) return { left: x.map((w) => [w, false]), right: y.map((w) => [w, false]) };
  const table = Array.from({ length: x.length + 1 }, () => new Uint16Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--) table[i]![j] = x[i] === y[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
  const left: [string, boolean][] = [];
  const right: [string, boolean][] = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) {
      left.push([x[i]!, false]);
      right.push([y[j]!, false]);
      i++;
      j++;
    } else if (table[i + 1]![j]! >= table[i]![j + 1]!) left.push([x[i++]!, true]);
    else right.push([y[j++]!, true]);
  }
  while (i < x.length) left.push([x[i++]!, true]);
  while (j < y.length) right.push([y[j++]!, true]);
  return { left, right };
}

const Words = ({ words }: { words: [string, boolean][] }) => (
  <pre className="answer">{words.map(([word, changed], k) => (changed && word.trim() ? <mark key={k}>{word}</mark> : word))}</pre>
);

/** Two configurations' answers to every prompt, side by side, with the words that differ marked. */
export function AnswerDiff({ view }: { view: EvalView }) {
  const [a, setA] = useState(view.instances[0]!.id);
  const [b, setB] = useState(view.instances[1]!.id);
  const answer = (p: number, id: string) => view.cells.find((c) => c.prompt_index === p && c.instance_id === id && c.repeat === 0)?.answer ?? '';
  const picker = (value: string, set: (v: string) => void, label: string) => (
    <select aria-label={label} value={value} onChange={(e) => set(e.target.value)}>
      {view.instances.map((i) => (
        <option key={i.id} value={i.id}>
          {i.id}
        </option>
      ))}
    </select>
  );
  return (
    <details className="panel">
      <summary>Diff two configurations</summary>
      <p>
        {picker(a, setA, 'Left configuration')} vs {picker(b, setB, 'Right configuration')}
      </p>
      {view.prompts.map((prompt, p) => {
        const { left, right } = wordDiff(answer(p, a), answer(p, b));
        return (
          <div key={p} className="diff-row">
            <h3>{prompt.messages.filter((m) => m.role === 'user').at(-1)?.content}</h3>
            <div className="diff-sides">
              <Words words={left} />
              <Words words={right} />
            </div>
          </div>
        );
      })}
    </details>
  );
}
