import type { Lease } from "./types.js";

/** How a store renews and gives up one lease it handed out. */
export interface LeaseBackend {
  /** True while this holder still owns the lease (and it was extended by its TTL). */
  renew(): Promise<boolean>;
  /** Deletes the lease if this holder still owns it. */
  release(): Promise<void>;
}

/**
 * The holder's side of a lease: renews every ttl/3 and aborts `lost` when the store says it changed
 * hands, or when no renewal has been confirmed for a whole TTL (the store may then have let it expire).
 */
export class HeldLease implements Lease {
  private readonly controller = new AbortController();
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(
    readonly key: string,
    readonly token: number,
    private readonly ttlMs: number,
    private readonly backend: LeaseBackend,
    private readonly autoRenew = true,
  ) {
    this.armExpiry(ttlMs);
    if (autoRenew) this.scheduleRenewal();
  }

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  async renew(): Promise<boolean> {
    if (this.released || this.lost.aborted) return false;
    const asked = Date.now();
    const owned = await this.backend.renew();
    if (!owned) this.lose(new Error(`the lease on ${this.key} expired or was taken by another holder`));
    // The store extended the lease from the moment it was asked, or later.
    else if (!this.lost.aborted) this.armExpiry(this.ttlMs - (Date.now() - asked));
    return owned && !this.lost.aborted;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    await this.backend.release();
  }

  private lose(reason: Error): void {
    this.stopTimers();
    if (!this.lost.aborted) this.controller.abort(reason);
  }

  private stopTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  // Fires when no renewal was confirmed for a whole TTL: the store may have let the lease go.
  private armExpiry(ms: number): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => {
      if (!this.released) this.lose(new Error(`the lease on ${this.key} was not renewed within ${this.ttlMs} ms`));
    }, Math.max(0, ms));
    this.expiryTimer.unref();
  }

  // A chain of timeouts, not an interval: a slow renewal never overlaps the next one.
  private scheduleRenewal(): void {
    this.renewTimer = setTimeout(() => void this.tick(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.renewTimer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.renew();
    } catch {
      // The store did not answer; the next attempt may, and the expiry timer covers the worst case.
    }
    if (this.autoRenew && !this.released && !this.lost.aborted) this.scheduleRenewal();
  }
}
