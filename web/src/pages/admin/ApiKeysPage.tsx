import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { createKey, listKeys, listModels, revokeKey, rotateKey, totalTokens, type ApiKey, type IssuedKey, type Tier } from './adminApi.js';
import { navigate } from '../../navigation.js';
import { SecretBox } from './SecretBox.js';
import { formatCount, formatDate, optionalInt } from './format.js';
import './admin.css';

/** The tiers' default requests per minute, shown when a key has no limit of its own. */
const TIER_RPM: Record<Tier, number> = { standard: 60, premium: 300 };

function CreateKeyForm({ models, onCreated }: { models: string[]; onCreated: (key: IssuedKey) => void }) {
  const [name, setName] = useState('');
  const [tier, setTier] = useState<Tier>('standard');
  const [rpm, setRpm] = useState('');
  const [tpm, setTpm] = useState('');
  const [allowed, setAllowed] = useState<string[]>([]);
  const [expires, setExpires] = useState('');
  const [manage, setManage] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const issued = await createKey({
        name: name.trim(),
        tier,
        rpm: optionalInt(rpm),
        tpm: optionalInt(tpm),
        models: allowed.length > 0 ? allowed : undefined,
        // datetime-local has no zone: it is the admin's local time, sent as an absolute instant.
        expires_at: expires ? new Date(expires).toISOString() : undefined,
        scopes: manage ? ['manage'] : undefined,
      });
      setName('');
      setRpm('');
      setTpm('');
      setAllowed([]);
      setExpires('');
      setManage(false);
      onCreated(issued);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel key-form" onSubmit={submit} aria-label="create a key">
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required placeholder="e.g. team-search" aria-label="key name" />
      </label>
      <label>
        Tier
        <select value={tier} onChange={(e) => setTier(e.target.value as Tier)} aria-label="tier">
          <option value="standard">standard ({TIER_RPM.standard}/min)</option>
          <option value="premium">premium ({TIER_RPM.premium}/min)</option>
        </select>
      </label>
      <label>
        Requests / minute
        <input type="number" min={1} step={1} value={rpm} onChange={(e) => setRpm(e.target.value)} placeholder={`tier: ${TIER_RPM[tier]}`} aria-label="rpm" />
      </label>
      <label>
        Tokens / minute
        <input type="number" min={1} step={1} value={tpm} onChange={(e) => setTpm(e.target.value)} placeholder="no limit" aria-label="tpm" />
      </label>
      <label>
        Expires
        <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} aria-label="expires" />
      </label>
      <label className="inline wide">
        <input type="checkbox" checked={manage} onChange={(e) => setManage(e.target.checked)} />
        May load and unload models (manage scope: changes what is loaded for every client)
      </label>
      <fieldset className="wide">
        <legend>Models allowed (none ticked = every model)</legend>
        <div className="model-choices">
          {models.length === 0 && <span className="muted">No models listed.</span>}
          {models.map((model) => (
            <label key={model} className="inline">
              <input
                type="checkbox"
                checked={allowed.includes(model)}
                onChange={(e) => setAllowed((list) => (e.target.checked ? [...list, model] : list.filter((m) => m !== model)))}
              />
              {model}
            </label>
          ))}
        </div>
      </fieldset>
      <div className="wide actions">
        <button type="submit" disabled={busy || !name.trim()}>
          Create key
        </button>
        {error && <span className="error">{error}</span>}
      </div>
    </form>
  );
}

/** Revoke and rotate ask once more inline: both cut off whoever holds the current secret. */
function KeyActions({ apiKey, onRotated, onChanged }: { apiKey: ApiKey; onRotated: (key: IssuedKey) => void; onChanged: () => void }) {
  const [confirming, setConfirming] = useState<'revoke' | 'rotate'>();
  const [error, setError] = useState<string>();
  if (apiKey.status === 'revoked') return null;
  const run = async (action: 'revoke' | 'rotate') => {
    setError(undefined);
    try {
      if (action === 'revoke') await revokeKey(apiKey.id);
      else onRotated(await rotateKey(apiKey.id));
      setConfirming(undefined);
      onChanged();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  if (confirming) {
    return (
      <div className="actions">
        <span>{confirming === 'revoke' ? `Revoke “${apiKey.name}”? Clients using it stop at once.` : `Rotate “${apiKey.name}”? The old secret stops working.`}</span>
        <button type="button" className="danger" onClick={() => void run(confirming)}>
          Yes, {confirming}
        </button>
        <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
          Cancel
        </button>
        {error && <span className="error">{error}</span>}
      </div>
    );
  }
  return (
    <div className="actions">
      <button type="button" className="secondary" onClick={() => setConfirming('rotate')}>
        Rotate
      </button>
      <button type="button" className="secondary" onClick={() => setConfirming('revoke')}>
        Revoke
      </button>
    </div>
  );
}

export function ApiKeysPage() {
  const [keys, setKeys] = useState<ApiKey[]>();
  const [models, setModels] = useState<string[]>([]);
  const [issued, setIssued] = useState<{ title: string; key: IssuedKey }>();
  const [error, setError] = useState<string>();

  const refresh = useCallback(() => {
    listKeys()
      .then((list) => {
        setKeys(list);
        setError(undefined);
      })
      .catch((e: Error) => setError(e.message));
  }, []);

  useEffect(() => {
    refresh();
    listModels()
      .then(setModels)
      .catch(() => setModels([]));
  }, [refresh]);

  return (
    <div className="admin-page">
      <h1>API keys</h1>
      <CreateKeyForm models={models} onCreated={(key) => (setIssued({ title: `Key “${key.name}” created`, key }), refresh())} />
      {issued && <SecretBox title={issued.title} secret={issued.key.key} onClose={() => setIssued(undefined)} />}
      {error && <p className="error">{error}</p>}
      <h2>Keys</h2>
      {keys && keys.length === 0 && <p className="empty">No keys yet: create one above.</p>}
      {keys && keys.length > 0 && (
        <div className="table-wrap">
          <table className="data" aria-label="API keys">
            <thead>
              <tr>
                <th>Key</th>
                <th>Limits</th>
                <th>Created</th>
                <th>Last used</th>
                <th>Expires</th>
                <th>State</th>
                <th className="num">Usage</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {keys.map((key) => {
                const state = key.status;
                const usageLink = `/admin/usage?key_id=${encodeURIComponent(key.id)}`;
                return (
                  <tr key={key.id} className={state === 'active' ? undefined : 'inactive'} data-key-id={key.id}>
                    <td>
                      <strong>{key.name}</strong> <span className={`badge ${key.tier}`}>{key.tier}</span>
                      {key.scopes.includes('manage') && (
                        <span className="badge manage" title="may load and unload models">
                          manage
                        </span>
                      )}
                      <div>
                        <code className="prefix">{key.prefix}…</code>
                      </div>
                    </td>
                    <td>
                      {key.rpm.toLocaleString()} req/min
                      <div>{key.tpm === null ? <span className="muted">no token limit</span> : `${key.tpm.toLocaleString()} tok/min`}</div>
                      <div className="muted">{key.models && key.models.length > 0 ? key.models.join(', ') : 'every model'}</div>
                    </td>
                    <td>{formatDate(key.created_at)}</td>
                    <td>{formatDate(key.last_used_at)}</td>
                    <td>{key.expires_at ? formatDate(key.expires_at) : <span className="muted">never</span>}</td>
                    <td className="state">
                      <span className={`badge ${state}`} data-testid="key-state">
                        {state}
                      </span>
                      {key.revoked_at && <div className="muted">{formatDate(key.revoked_at)}</div>}
                    </td>
                    <td className="num" title={`${key.usage.prompt_tokens.toLocaleString()} prompt + ${key.usage.completion_tokens.toLocaleString()} completion tokens`}>
                      <span data-testid="key-requests">{formatCount(key.usage.requests)}</span> req
                      <div>{formatCount(totalTokens(key.usage))} tokens</div>
                      <a href={usageLink} onClick={(e) => (e.preventDefault(), navigate(usageLink))}>
                        by day →
                      </a>
                    </td>
                    <td className="key-actions">
                      <KeyActions apiKey={key} onChanged={refresh} onRotated={(k) => setIssued({ title: `Key “${k.name}” rotated: its new secret`, key: k })} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
