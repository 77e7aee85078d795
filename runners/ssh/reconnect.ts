import { backoffDelay, ConnectionLost, isConnectionError, sleep, type HostLink } from "./connection.js";

// Retrying an idempotent step across dropped connections: the step runs again once the connection
// is back, with exponential backoff between attempts and a deadline after which we give up.

export interface ReconnectHooks {
  /** How long an outage may last before we give up (read at every attempt, so it can change). */
  maxDownMs: () => number;
  /** The first failure of an outage. */
  onLost?: (reason: string) => void;
  /** The connection is back after an outage. */
  onBack?: (downMs: number) => void;
  /** Cuts waits short (the step is then tried again at once). */
  wake?: () => AbortSignal;
}

export async function withReconnect<T>(conn: HostLink, step: () => Promise<T>, hooks: ReconnectHooks): Promise<T> {
  let downSince: number | null = null;
  let failures = 0;
  const left = () => (downSince === null ? hooks.maxDownMs() : Math.max(0, downSince + hooks.maxDownMs() - Date.now()));
  for (let attempt = 0; ; ) {
    try {
      const value = await step();
      if (downSince !== null) hooks.onBack?.(Date.now() - downSince);
      return value;
    } catch (err) {
      // An operation that failed while the link is up failed for its own reasons.
      if (!isConnectionError(err) && conn.connected) throw err;
      if (downSince === null) {
        downSince = Date.now();
        hooks.onLost?.((err as Error).message);
      }
      // A step that fails again right after a reconnect (a flapping link) waits before the next try.
      if (failures++ > 0) await sleep(Math.min(backoffDelay(failures - 2), left()), hooks.wake?.());
      // Wait for a connection, then run the step again.
      for (;;) {
        if (left() <= 0)
          throw new ConnectionLost(`${(err as Error).message}; gave up reconnecting after ${Math.round((Date.now() - downSince) / 1000)} s`);
        try {
          await conn.connect({ attempts: 1 });
          attempt = 0;
          break;
        } catch (e) {
          if (!isConnectionError(e)) throw e;
          await sleep(Math.min(backoffDelay(attempt++), left()), hooks.wake?.());
        }
      }
    }
  }
}
