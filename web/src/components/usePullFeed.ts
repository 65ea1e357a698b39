import { useEffect, useRef, useState } from 'react';
import { ApiError, apiFetch, readNdjson } from '../api.js';
import type { PullJob } from './arena-types.js';

type PullEvent = { type: 'snapshot'; pulls: PullJob[] } | { type: 'update'; job: PullJob } | { type: 'ping' };

const RECONNECT_MS = 2000;

/**
 * The server's model downloads, live: `/api/pulls/events` gives every job, then each change. Because
 * the jobs live on the server, a reload or a second browser sees the same progress. The feed
 * reconnects when the connection drops (a server restart), but not when it is refused (401/403).
 */
export function usePullFeed(onFinished?: (job: PullJob) => void) {
  const [jobs, setJobs] = useState<PullJob[]>([]);
  const [connected, setConnected] = useState(false);
  const finished = useRef(onFinished);
  finished.current = onFinished;

  useEffect(() => {
    const abort = new AbortController();
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      try {
        const response = await apiFetch('/api/pulls/events', { signal: abort.signal });
        setConnected(true);
        await readNdjson<PullEvent>(response, (event) => {
          if (event.type === 'snapshot') setJobs(event.pulls);
          if (event.type !== 'update') return;
          const { job } = event;
          setJobs((all) => (all.some((j) => j.id === job.id) ? all.map((j) => (j.id === job.id ? job : j)) : [job, ...all]));
          if (job.state !== 'running') finished.current?.(job);
        });
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return;
      } finally {
        setConnected(false);
      }
      if (!abort.signal.aborted) retry = setTimeout(() => void connect(), RECONNECT_MS);
    };
    void connect();
    return () => {
      abort.abort();
      clearTimeout(retry);
    };
  }, []);

  return { jobs, connected };
}
