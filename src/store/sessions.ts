import type { ChatMessage } from '../domain/chat.js';
import type { Store } from './database.js';

export interface StoredSession {
  id: string;
  owner: string;
  model: string;
  messages: ChatMessage[];
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
}

/** One finished chat turn: the messages to add and the session's new times. */
export interface SessionTurn {
  id: string;
  owner: string;
  model: string;
  messages: ChatMessage[];
  now: string;
  expiresAt: string;
}

/**
 * The most characters of conversation a session keeps: far more than any model's context holds (about
 * 250,000 tokens), so that no follow-up loses what truncation would have kept, while a client cannot
 * make each turn write, and the next one read back, megabytes that no model will ever see.
 */
const SESSION_MAX_CHARS = 1_000_000;

/**
 * The newest part of a conversation within `maxChars` characters, cut as truncation cuts a prompt:
 * the oldest messages go first, and a message that straddles the bound keeps its end. System
 * messages stay while they fit, since truncation keeps them too.
 */
function newestWithin(messages: ChatMessage[], maxChars = SESSION_MAX_CHARS): ChatMessage[] {
  let room = maxChars;
  const kept: ChatMessage[] = [];
  for (const message of messages) if (message.role === 'system') room -= message.content.length;
  if (room < 0) room = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.role === 'system') {
      kept.push(message);
      continue;
    }
    if (room <= 0) continue;
    kept.push(message.content.length <= room ? message : { ...message, content: message.content.slice(message.content.length - room) });
    room -= message.content.length;
  }
  return kept.reverse();
}

interface PendingCreate {
  turn: SessionTurn;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * How long a new session waits for others to share its insert's transaction. Nobody waits for it but
 * a read of that very session (the client's next turn, once it has its answer), which waits at most
 * this long; the answer itself goes out before the write on SQLite (see SessionService).
 */
const CREATE_BATCH_MS = 10;

/** Server-side sessions in the store (SQLite or PostgreSQL); timestamps are ISO-8601 strings. */
export class SessionStore {
  /**
   * On SQLite, new sessions (one per `/api/chat` without a session_id, so one per request on that
   * path) are inserted with a prepared statement, all those of CREATE_BATCH_MS in one transaction:
   * through Kysely each insert cost ~0.1 ms of CPU, and a transaction per row about 50 µs against 20
   * for ten rows in one (bench/RESULTS.md, Gateway overhead).
   */
  private readonly sqliteInsert?: { one: (turn: SessionTurn) => void; many: (turns: SessionTurn[]) => void };
  private pendingCreates: PendingCreate[] = [];

  constructor(private readonly store: Store) {
    const sqlite = store.sqlite;
    if (sqlite) {
      const insert = sqlite.prepare(
        'INSERT INTO sessions (id, owner, model, messages, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      const one = (turn: SessionTurn) => {
        insert.run(turn.id, turn.owner, turn.model, JSON.stringify(newestWithin(turn.messages)), turn.now, turn.now, turn.expiresAt);
      };
      const many = sqlite.transaction((turns: SessionTurn[]) => {
        for (const turn of turns) one(turn);
      });
      this.sqliteInsert = { one, many };
    }
  }

  async get(id: string): Promise<StoredSession | undefined> {
    const row = await this.store.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      id: row.id,
      owner: row.owner,
      model: row.model,
      messages: JSON.parse(row.messages) as ChatMessage[],
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      expiresAt: row.expires_at,
    };
  }

  /**
   * Stores a new session with its first turn: one plain insert, since its id was just made. Resolves
   * once the row is committed (SessionService makes reads of the session wait for that).
   */
  async create(turn: SessionTurn): Promise<void> {
    if (this.sqliteInsert) {
      return new Promise<void>((resolve, reject) => {
        if (this.pendingCreates.push({ turn, resolve, reject }) === 1) setTimeout(() => this.insertPending(), CREATE_BATCH_MS);
      });
    }
    await this.store.db
      .insertInto('sessions')
      .values({
        id: turn.id,
        owner: turn.owner,
        model: turn.model,
        messages: JSON.stringify(newestWithin(turn.messages)),
        created_at: turn.now,
        updated_at: turn.now,
        expires_at: turn.expiresAt,
      })
      .execute();
  }

  /**
   * Inserts the new sessions of one batch in one transaction; if it fails, each on its own,
   * so one bad row fails alone. It holds Kysely's connection meanwhile, so that it never lands inside
   * a Kysely transaction that is open across an await (an append's).
   */
  private insertPending(): void {
    const batch = this.pendingCreates;
    this.pendingCreates = [];
    void this.store.db
      .connection()
      .execute(async () => this.insertBatch(batch))
      .catch((error: unknown) => {
        for (const pending of batch) pending.reject(error);
      });
  }

  private insertBatch(batch: PendingCreate[]): void {
    const insert = this.sqliteInsert!;
    try {
      insert.many(batch.map((pending) => pending.turn));
      for (const pending of batch) pending.resolve();
      return;
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
    }
    for (const pending of batch) {
      try {
        insert.one(pending.turn);
        pending.resolve();
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  /**
   * Appends a turn to an existing session. The read and the write are one transaction (the row locked
   * on PostgreSQL; SQLite runs one writer at a time), so two turns finishing together both land. A
   * session deleted meanwhile stays deleted (false).
   */
  async append(turn: SessionTurn): Promise<boolean> {
    return this.store.db.transaction().execute(async (trx) => {
      let query = trx.selectFrom('sessions').select(['messages']).where('id', '=', turn.id);
      if (this.store.dialect === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirst();
      if (!row) return false;
      const messages = newestWithin([...(JSON.parse(row.messages) as ChatMessage[]), ...turn.messages]);
      await trx
        .updateTable('sessions')
        .set({ model: turn.model, messages: JSON.stringify(messages), updated_at: turn.now, expires_at: turn.expiresAt })
        .where('id', '=', turn.id)
        .execute();
      return true;
    });
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.store.db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Deletes every session idle past its expiry; returns how many. */
  async sweep(now: string): Promise<number> {
    const result = await this.store.db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
