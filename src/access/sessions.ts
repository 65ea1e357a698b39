import crypto from 'node:crypto';
import type { ChatMessage } from '../domain/chat.js';
import type { Principal } from './auth.js';
import { SessionStore, type StoredSession } from '../store/sessions.js';
import type { Store } from '../store/database.js';

/**
 * The extended Ollama API's server-side sessions: `/api/chat` keeps the conversation so a client sends only its new
 * message. A session belongs to the API key that made it (the admin and an open server share one
 * scope), is forgotten after `ttlMs` without a turn, and is invisible (404) to anyone else.
 */

class SessionError extends Error {
  constructor(
    message: string,
    readonly statusCode: 400 | 404,
  ) {
    super(message);
  }
}

/** What a chat turn needs: the id to return and the stored conversation to put before the new messages. */
export interface OpenSession {
  id: string;
  history: ChatMessage[];
  isNew: boolean;
}

export interface SessionView {
  session_id: string;
  model: string;
  messages: ChatMessage[];
  created_at: string;
  updated_at: string;
  expires_at: string;
}

/** Idle sessions are swept at most this often, when a new session is made. */
const SWEEP_INTERVAL_MS = 60_000;
const MAX_ID_LENGTH = 200;

export class SessionService {
  private readonly store: SessionStore;
  private lastSweep = 0;
  /**
   * Turns being written, per session, chained in order; whatever reads a session here waits for its
   * pending writes first, so this process never shows a session without its last turn.
   */
  private readonly writes = new Map<string, Promise<void>>();
  /**
   * Whether an answer waits for its turn to be stored. On PostgreSQL yes: the client's next turn may
   * reach another replica, which must already see this one. On SQLite, one process owns the file and
   * reads its own writes through `writes`, so the answer goes out first and the write follows.
   */
  private readonly answerAfterWrite: boolean;

  constructor(
    store: Store,
    private readonly ttlMs: number,
    private readonly onWriteError: (error: unknown) => void = () => undefined,
  ) {
    this.store = new SessionStore(store);
    this.answerAfterWrite = store.dialect === 'postgres';
  }

  private static ownerOf(principal: Principal | undefined): string {
    return principal?.kind === 'key' ? `key:${principal.keyId}` : 'shared';
  }

  /** Whether `principal` may see the session: its owner, or the admin, who governs every key. */
  private static visible(session: StoredSession, principal: Principal | undefined): boolean {
    return principal?.kind === 'admin' || session.owner === SessionService.ownerOf(principal);
  }

  private async find(id: unknown, principal: Principal | undefined): Promise<StoredSession> {
    if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH) {
      throw new SessionError(`session_id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`, 400);
    }
    await this.writes.get(id);
    const session = await this.store.get(id);
    if (session && session.expiresAt <= new Date().toISOString()) {
      await this.store.delete(id);
    } else if (session && SessionService.visible(session, principal)) {
      return session;
    }
    throw new SessionError(`session '${id}' not found`, 404);
  }

  /** The session a chat turn continues (`session_id` given) or starts (absent: a new id). */
  async open(id: unknown, principal: Principal | undefined): Promise<OpenSession> {
    if (id === undefined || id === null) {
      void this.sweepSometimes();
      return { id: crypto.randomUUID(), history: [], isNew: true };
    }
    const session = await this.find(id, principal);
    return { id: session.id, history: session.messages, isNew: false };
  }

  /**
   * Stores a finished turn (the client's new messages and the answer), in order; resolves when the
   * answer may go out (see `answerAfterWrite`). A failed write is reported, never thrown at the client.
   */
  async record(session: OpenSession, principal: Principal | undefined, model: string, messages: ChatMessage[]): Promise<void> {
    const now = new Date();
    const turn = {
      id: session.id,
      owner: SessionService.ownerOf(principal),
      model,
      messages,
      now: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.ttlMs).toISOString(),
    };
    const previous = this.writes.get(session.id) ?? Promise.resolve();
    const store = async () => {
      if (session.isNew) await this.store.create(turn);
      else await this.store.append(turn);
    };
    const write = previous.then(store).then(() => undefined, this.onWriteError);
    this.writes.set(session.id, write);
    void write.then(() => {
      if (this.writes.get(session.id) === write) this.writes.delete(session.id);
    });
    if (this.answerAfterWrite) await write;
  }

  /** Waits for every turn still being written (before the store closes). */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes.values());
  }

  async get(id: string, principal: Principal | undefined): Promise<SessionView> {
    const session = await this.find(id, principal);
    return {
      session_id: session.id,
      model: session.model,
      messages: session.messages,
      created_at: session.createdAt,
      updated_at: session.updatedAt,
      expires_at: session.expiresAt,
    };
  }

  async delete(id: string, principal: Principal | undefined): Promise<void> {
    const session = await this.find(id, principal);
    await this.store.delete(session.id);
  }

  private async sweepSometimes(): Promise<void> {
    if (Date.now() - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = Date.now();
    await this.store.sweep(new Date().toISOString()).catch(() => undefined);
  }
}

