import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openStore, type Store } from '../../src/store/database.js';
import { UsageLedger } from '../../src/access/usage-ledger.js';
import { UsageBuffer, type ModelUse } from '../../src/access/usage-buffer.js';
import { tempDir } from '../support/server.js';

/** The usage ledger against a real SQLite file: what it holds between writes comes out as rows, whole. */

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function ledger(): Promise<{ ledger: UsageLedger; errors: unknown[]; rows: () => Promise<Record<string, unknown>[]> }> {
  store = await openStore({ dataDir: tempDir('usage-ledger-') });
  const errors: unknown[] = [];
  const opened = store;
  return {
    ledger: new UsageLedger(opened, (error) => errors.push(error)),
    errors,
    rows: () => opened.db.selectFrom('usage_records').selectAll().orderBy(sql`rowid`).execute(),
  };
}

const use = (request: number, model: string | null, at: number, promptTokens = 0): ModelUse => ({
  request,
  keyId: 'k1',
  model,
  surface: 'arena',
  promptTokens,
  completionTokens: 2,
  durationMs: 12,
  status: 200,
  at,
});

describe('UsageLedger', () => {
  it('writes each use as a row, the uses of one request under one request id, at the time they ended', async () => {
    const { ledger: usage, rows } = await ledger();
    const at = Date.parse('2026-03-04T05:06:07.089Z');
    const first = usage.nextRequest();
    const second = usage.nextRequest();
    usage.record(use(first, 'a:latest', at, 3));
    usage.record(use(first, 'b:latest', at, 4));
    usage.record(use(second, null, at + 1));
    await usage.flush();
    const written = await rows();
    expect(written.map(({ request_id: _request, ...row }) => row)).toEqual([
      { key_id: 'k1', model: 'a:latest', surface: 'arena', prompt_tokens: 3, completion_tokens: 2, duration_ms: 12, status: 200, created_at: '2026-03-04T05:06:07.089Z' },
      { key_id: 'k1', model: 'b:latest', surface: 'arena', prompt_tokens: 4, completion_tokens: 2, duration_ms: 12, status: 200, created_at: '2026-03-04T05:06:07.089Z' },
      { key_id: 'k1', model: null, surface: 'arena', prompt_tokens: 0, completion_tokens: 2, duration_ms: 12, status: 200, created_at: '2026-03-04T05:06:07.090Z' },
    ]);
    expect(written[0]!.request_id).toBe(written[1]!.request_id);
    expect(written[2]!.request_id).not.toBe(written[0]!.request_id);
    await usage.close();
  });

  it('gives request ids no other ledger gives, so that requests of two replicas or two runs never merge', async () => {
    const { ledger: one, rows } = await ledger();
    const other = new UsageLedger(store!, () => undefined);
    one.record(use(one.nextRequest(), 'a:latest', Date.now()));
    other.record(use(other.nextRequest(), 'a:latest', Date.now()));
    await one.flush();
    await other.flush();
    const ids = (await rows()).map((row) => row.request_id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    await Promise.all([one.close(), other.close()]);
  });

  it('keeps a batch whose write failed, writes it first at the next attempt, and loses nothing recorded meanwhile', async () => {
    const { ledger: usage, errors, rows } = await ledger();
    usage.record(use(usage.nextRequest(), 'before:latest', Date.now()));
    store!.sqlite!.exec('ALTER TABLE usage_records RENAME TO usage_records_away');
    await expect(usage.flush()).rejects.toThrow(/usage_records/);
    expect(errors).toHaveLength(1);
    usage.record(use(usage.nextRequest(), 'after:latest', Date.now()));
    store!.sqlite!.exec('ALTER TABLE usage_records_away RENAME TO usage_records');
    await usage.flush();
    expect((await rows()).map((row) => row.model)).toEqual(['before:latest', 'after:latest']);
    await usage.close();
  });
});

describe('UsageBuffer', () => {
  it('keeps every record whole and in order however many wait, and starts afresh after each batch', () => {
    const buffer = new UsageBuffer();
    const at = Date.parse('2026-03-04T05:06:07.000Z');
    // Far more than it has room for from the start (a database away a while), models named by fresh strings.
    const count = 40_000;
    for (let i = 0; i < count; i++) {
      const request = buffer.nextRequest();
      buffer.push({ request, keyId: i % 3 === 0 ? null : `k${i % 3}`, model: i % 5 === 0 ? null : ['m', String(i % 7)].join(''), surface: i % 2 ? 'openai' : 'ollama', promptTokens: i * 3, completionTokens: 2 ** 40 + i, durationMs: i % 1000, status: 200 + (i % 300), at: at + i });
    }
    expect(buffer.length).toBe(count);
    const rows = buffer.take();
    expect(buffer.length).toBe(0);
    expect(rows).toHaveLength(count);
    const prefix = rows[0]!.request_id.replace(/-1$/, '');
    rows.forEach((row, i) => {
      expect(row).toEqual({
        request_id: `${prefix}-${i + 1}`,
        key_id: i % 3 === 0 ? null : `k${i % 3}`,
        model: i % 5 === 0 ? null : `m${i % 7}`,
        surface: i % 2 ? 'openai' : 'ollama',
        prompt_tokens: i * 3,
        completion_tokens: 2 ** 40 + i,
        duration_ms: i % 1000,
        status: 200 + (i % 300),
        created_at: new Date(at + i).toISOString(),
      });
    });
    // The next batch holds only what came after the last one was taken.
    buffer.push({ request: buffer.nextRequest(), keyId: 'k9', model: 'after', surface: 'arena', promptTokens: 1, completionTokens: 1, durationMs: 1, status: 499, at });
    expect(buffer.take().map((row) => [row.request_id, row.model, row.status])).toEqual([[`${prefix}-${count + 1}`, 'after', 499]]);
    expect(buffer.take()).toEqual([]);
  });
});
