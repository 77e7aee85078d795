// Edits of one message go out one at a time, and only the newest waiting content is sent: while an edit
// is in flight (or waiting out a 429), later edits replace each other instead of piling up.

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Slot<T> {
  next: { content: T; waiters: Waiter[] } | null;
}

export class EditQueue<T> {
  private readonly slots = new Map<string, Slot<T>>();

  constructor(private readonly send: (key: string, content: T) => Promise<void>) {}

  /** Resolves once `content`, or newer content for the same key, has been sent. */
  edit(key: string, content: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      const busy = this.slots.get(key);
      if (busy) {
        if (busy.next) {
          busy.next.content = content;
          busy.next.waiters.push(waiter);
        } else busy.next = { content, waiters: [waiter] };
        return;
      }
      const slot: Slot<T> = { next: { content, waiters: [waiter] } };
      this.slots.set(key, slot);
      void this.drain(key, slot);
    });
  }

  /** Edits in flight or waiting, over all keys. */
  get pending(): number {
    return this.slots.size;
  }

  private async drain(key: string, slot: Slot<T>): Promise<void> {
    while (slot.next) {
      const batch = slot.next;
      slot.next = null;
      try {
        await this.send(key, batch.content);
        for (const w of batch.waiters) w.resolve();
      } catch (err) {
        for (const w of batch.waiters) w.reject(err);
      }
    }
    this.slots.delete(key);
  }
}
