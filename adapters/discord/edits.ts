// Edits of one message run one at a time, and while one is in flight only the newest waiting edit is kept:
// a status card edited faster than Discord allows (or waiting out a 429) shows its latest state, never an
// older one after a newer one, and never piles up requests.

type Job = () => Promise<void>;

interface Slot {
  running: Promise<void>;
  next: { job: Job; waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> } | null;
}

export class EditQueue {
  private readonly slots = new Map<string, Slot>();

  /** Runs `job` after the edit in flight for `key`; resolves when it (or a newer edit replacing it) is done. */
  edit(key: string, job: Job): Promise<void> {
    const slot = this.slots.get(key);
    if (!slot) return this.start(key, job);
    return new Promise<void>((resolve, reject) => {
      if (slot.next) {
        // The replaced edit's caller is told once the newer edit lands, since that one carries its intent.
        slot.next.job = job;
        slot.next.waiters.push({ resolve, reject });
      } else slot.next = { job, waiters: [{ resolve, reject }] };
    });
  }

  private start(key: string, job: Job): Promise<void> {
    const running = job();
    const slot: Slot = { running, next: null };
    this.slots.set(key, slot);
    const advance = () => {
      const next = slot.next;
      if (!next) {
        this.slots.delete(key);
        return;
      }
      slot.next = null;
      slot.running = next.job();
      slot.running.then(
        () => next.waiters.forEach((w) => w.resolve()),
        (err) => next.waiters.forEach((w) => w.reject(err)),
      );
      void slot.running.catch(() => {}).then(advance);
    };
    void running.catch(() => {}).then(advance);
    return running;
  }

  /** Resolves once no edit is running or waiting. */
  async idle(): Promise<void> {
    while (this.slots.size) await Promise.all([...this.slots.values()].map((s) => s.running.catch(() => {})));
  }
}
