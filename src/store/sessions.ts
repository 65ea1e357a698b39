import type { ChatMessage } from '../backends/types.js';
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

/** Seed 004 sessions in the store (SQLite or PostgreSQL); timestamps are ISO-8601 strings. */
export class SessionStore {
  constructor(private readonly store: Store) {}

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

  /** Stores a new session with its first turn: one plain insert, since its id was just made. */
  async create(turn: SessionTurn): Promise<void> {
    await this.store.db
      .insertInto('sessions')
      .values({
        id: turn.id,
        owner: turn.owner,
        model: turn.model,
        messages: JSON.stringify(turn.messages),
        created_at: turn.now,
        updated_at: turn.now,
        expires_at: turn.expiresAt,
      })
      .execute();
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
      const messages = [...(JSON.parse(row.messages) as ChatMessage[]), ...turn.messages];
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
