import '../components/arena.css';
import { useEffect, useRef, useState } from 'react';
import { instanceKey, settingsSummary, shortId, defaultSettings, type InstanceSettings } from '../components/arena-types.js';
import { GridHelper } from '../components/GridHelper.js';
import { InstanceEditor, settingsProblems } from '../components/InstanceEditor.js';
import { Link } from '../components/Link.js';
import { PromptBox } from '../components/PromptBox.js';
import { StreamColumn } from '../components/StreamColumn.js';
import { SaveAsModel } from '../components/SaveAsModel.js';
import { historyOf, useColumns } from '../components/useColumns.js';
import { useModels } from '../components/useModels.js';
import { loadInstances, saveInstances } from '../components/savedInstances.js';
import { handOffSettings } from '../components/evalSuite.js';
import { navigate } from '../navigation.js';
import { CopyButton } from './admin/clipboard.js';
import { FirstRun } from '../components/FirstRun.js';

/** An instance on the page: a stable key for its column, and its settings (editable between turns). */
interface Slot {
  uid: string;
  settings: InstanceSettings;
}

let nextUid = 0;
const slot = (settings: InstanceSettings): Slot => ({ uid: `i${++nextUid}`, settings });

/** The instances of the last visit, so a reload keeps the comparison set up. */
const savedSlots = (): Slot[] => loadInstances().map(slot);

/** Two instances to start from: the first two models, or the first model at two temperatures. */
function starterSlots(models: string[]): Slot[] {
  if (models.length === 0) return [];
  const second = models[1] ? defaultSettings(models[1]) : { ...defaultSettings(models[0]!), temperature: 1.2 };
  return [slot(defaultSettings(models[0]!)), slot(second)];
}

/** What stops a comparison from being sent: settings out of range, or two instances that are the same. */
function problemsOf(slots: Slot[]): string[] {
  const problems = slots.flatMap((s, i) => settingsProblems(s.settings).map((p) => `#${i + 1}: ${p}`));
  const seen = new Map<string, number>();
  slots.forEach((s, i) => {
    const key = instanceKey(s.settings);
    if (seen.has(key)) problems.push(`#${i + 1} has the same settings as #${seen.get(key)! + 1}: change one`);
    else seen.set(key, i);
  });
  return problems;
}

/** The instances a saved conversation was made with, in a form that compares as a whole. */
const keysOf = (slots: Slot[]) => slots.map((s) => instanceKey(s.settings)).sort().join('\n');

/**
 * The compare page: any number of model instances answer the same prompt, each streaming into its
 * own column with live metrics. Each column keeps its own conversation; a turn sends every column its
 * own history in one request, and a follow-up names the run of the conversation, so that a
 * conversation is one saved run with all its turns.
 */
export function ComparePage() {
  const { models, error: modelsError } = useModels();
  const names = models?.map((m) => m.name) ?? [];
  const [slots, setSlots] = useState<Slot[]>(savedSlots);
  const columns = useColumns();
  const controller = useRef<AbortController | null>(null);
  const [runIds, setRunIds] = useState<string[]>([]);
  /**
   * The saved run of the conversation on the page, with the instances it was made with: a follow-up
   * continues it while the instances are the same (the server refuses others); changed instances
   * start a run of their own.
   */
  const conversation = useRef<{ runId: string; keys: string } | null>(null);
  // The settings are open until the first prompt, then fold to a line so the answers come first.
  const [panelOpen, setPanelOpen] = useState(true);
  /** Per column: the column its latest answer is compared with, word by word. */
  const [diffWith, setDiffWith] = useState<Record<string, string>>({});

  useEffect(() => {
    if (models && slots.length === 0) setSlots(starterSlots(models.map((m) => m.name)));
    // Only when the model list arrives: an empty list after that is the user's choice.
  }, [models]);
  useEffect(() => saveInstances(slots.map((s) => s.settings)), [slots]);
  useEffect(() => () => controller.current?.abort(), []);

  const problems = problemsOf(slots);
  const setSettings = (uid: string, settings: InstanceSettings) => setSlots((all) => all.map((s) => (s.uid === uid ? { ...s, settings } : s)));
  const duplicate = (index: number) => setSlots((all) => [...all.slice(0, index + 1), slot({ ...all[index]!.settings }), ...all.slice(index + 1)]);
  const removeSlot = (uid: string) => {
    setSlots((all) => all.filter((s) => s.uid !== uid));
    columns.remove(uid);
  };

  /**
   * Sends `prompt` to `targets` (every column, or one column answering its latest prompt again), each
   * column its own history, in one request. A regenerated answer is saved as a run of its own: the
   * conversation's run keeps the answer first given.
   */
  const send = async (prompt: string, targets: Slot[] = slots, regenerate = false) => {
    if (problems.length > 0 || targets.length === 0) return;
    setPanelOpen(false);
    const histories = targets.map((s) => {
      const column = columns.current.current[s.uid];
      const earlier = regenerate && column ? { ...column, turns: column.turns.slice(0, -1) } : column;
      return historyOf(earlier, prompt);
    });
    const shared = histories[0]!;
    const sharedKey = JSON.stringify(shared);
    const keys = keysOf(targets);
    const continues = !regenerate && conversation.current?.keys === keys ? conversation.current.runId : undefined;
    const abort = new AbortController();
    controller.current = abort;
    columns.begin(targets.map((s) => s.uid), prompt, regenerate);
    // Each instance's id is the key the server would build from its settings, so runs and exports name instances alike.
    const byId = new Map(targets.map((s) => [instanceKey(s.settings), s.uid]));
    const model_instances = targets.map((s, i) => ({
      id: instanceKey(s.settings),
      ...s.settings,
      // Only a column whose conversation differs from the shared one sends its own.
      ...(JSON.stringify(histories[i]) === sharedKey ? {} : { history: histories[i] }),
    }));
    await columns.stream(
      '/api/stream_chat',
      { history: shared, model_instances, ...(continues ? { run_id: continues } : {}) },
      targets.map((s) => s.uid),
      {
        signal: abort.signal,
        columnOf: (line) => byId.get(line.instance_id ?? ''),
        onResponse: (response) => {
          const runId = response.headers.get('x-run-id');
          if (!runId || !response.ok) return;
          if (regenerate) setRunIds((ids) => [...ids, runId]);
          else if (runId !== continues) {
            conversation.current = { runId, keys };
            setRunIds([runId]);
          }
        },
      },
    );
  };

  const started = Object.keys(columns.columns).length > 0;
  if (models && names.length === 0) return <FirstRun />;
  const latestOf = (uid: string) => columns.columns[uid]?.turns.at(-1);
  const labelOf = (uid: string) => {
    const index = slots.findIndex((s) => s.uid === uid);
    return index === -1 ? '' : `#${index + 1} ${slots[index]!.settings.model}`;
  };
  return (
    <div className="page compare-page">
      <h1>
        Compare <span className="hint">the same prompt, several models or settings, side by side</span>
      </h1>
      <PromptBox
        busy={columns.streaming}
        disabled={problems.length > 0 || slots.length === 0}
        onSend={(prompt) => void send(prompt)}
        onStop={() => controller.current?.abort()}
        placeholder={started ? 'Continue the conversation in every column…' : 'Ask every instance the same thing…'}
        extra={
          started && (
            <button type="button" disabled={columns.streaming} onClick={() => { columns.reset(); conversation.current = null; setRunIds([]); setDiffWith({}); }}>
              New conversation
            </button>
          )
        }
      />

      <details className="panel instances" open={panelOpen} onToggle={(e) => setPanelOpen(e.currentTarget.open)}>
        <summary>
          Instances ({slots.length}){' '}
          <span className="hint">{panelOpen ? 'model + settings; duplicate one to vary a single setting' : slots.map((s) => s.settings.model).join(' · ')}</span>
        </summary>
        {modelsError && <p className="error">Could not list models: {modelsError}</p>}
        {models && names.length === 0 && <p className="empty">No models yet: pull one on the <Link to="/models">Models</Link> page.</p>}
        <div className="instance-list">
          {slots.map((s, index) => (
            <InstanceEditor
              key={s.uid}
              index={index}
              value={s.settings}
              models={names}
              onChange={(settings) => setSettings(s.uid, settings)}
              onDuplicate={() => duplicate(index)}
              onRemove={() => removeSlot(s.uid)}
            />
          ))}
        </div>
        <div className="instance-actions">
          <button type="button" disabled={names.length === 0} onClick={() => setSlots((all) => [...all, slot(defaultSettings(names[0]!))])}>
            Add instance
          </button>
          <button type="button" disabled={slots.length === 0 || problems.length > 0} onClick={() => (handOffSettings(slots.map((s) => s.settings)), navigate('/evals'))}>
            Evaluate these settings
          </button>
        </div>
        <details className="grid">
          <summary>Grid: models × temperatures × seeds</summary>
          <GridHelper models={names} onApply={(grid, replace) => setSlots((all) => [...(replace ? [] : all), ...grid.map(slot)])} />
        </details>
      </details>
      {problems.length > 0 && (
        <ul className="error problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}


      <div className="columns row" data-testid="columns">
        {slots.map((s, index) => {
          const latest = latestOf(s.uid);
          const other = diffWith[s.uid];
          const otherAnswer = other ? latestOf(other) : undefined;
          const done = latest !== undefined && !columns.columns[s.uid]?.streaming;
          return (
            <StreamColumn
              key={s.uid}
              title={`#${index + 1} ${s.settings.model}`}
              subtitle={settingsSummary(s.settings)}
              column={columns.columns[s.uid]}
              limit={s.settings.num_predict}
              diff={otherAnswer ? { label: labelOf(other!), text: otherAnswer.answer } : null}
              actions={
                <>
                  {done && (
                  <>
                    <CopyButton text={() => latest.answer} label="Copy" />
                    <button type="button" disabled={columns.streaming || problems.length > 0} onClick={() => void send(latest.prompt, [s], true)}>
                      Regenerate
                    </button>
                    {slots.length > 1 && (
                      <select
                        aria-label={`compare the answer of #${index + 1} with`}
                        value={other ?? ''}
                        onChange={(e) => setDiffWith((all) => ({ ...all, [s.uid]: e.target.value }))}
                      >
                        <option value="">Diff with…</option>
                        {slots
                          .filter((o) => o.uid !== s.uid)
                          .map((o) => (
                            <option key={o.uid} value={o.uid}>
                              {labelOf(o.uid)}
                            </option>
                          ))}
                      </select>
                    )}
                  </>
                  )}
                  <SaveAsModel settings={s.settings} />
                </>
              }
            />
          );
        })}
      </div>

      {runIds.length > 0 && !columns.streaming && (
        <p className="run-links" data-testid="run-links">
          Saved as {runIds.length === 1 ? 'run' : 'runs'}{' '}
          {/* A new tab, so that opening the permalink does not end the conversation here. */}
          {runIds.map((id) => (
            <a key={id} href={`/runs/${id}`} target="_blank" rel="noopener">
              {shortId(id)}
            </a>
          ))}
        </p>
      )}
    </div>
  );
}
