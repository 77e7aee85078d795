import type { CardMessage } from "./actions.js";
import { BoundedMap } from "../bounded.js";

// The card each thread waits on. A click counts only on that card: an answered, decided or superseded card
// is stale. After a restart the registry is empty, and the first card clicked in a thread becomes current.

export interface Card {
  id: string;
  /** The card as this process posted it (unknown for cards posted before a restart). */
  message?: CardMessage;
}

export class Cards {
  private readonly current = new BoundedMap<string, Card>(10_000);
  private readonly retired = new BoundedMap<string, true>(10_000);

  get(thread: string): Card | undefined {
    return this.current.get(thread);
  }

  set(thread: string, card: Card): void {
    this.current.set(thread, card);
  }

  /** Takes the thread's card out of play; returns it so its buttons can be removed. */
  retire(thread: string): Card | undefined {
    const card = this.current.get(thread);
    if (!card) return undefined;
    this.current.delete(thread);
    this.retired.set(card.id, true);
    return card;
  }

  /** A card was decided (its new content has no buttons). */
  decided(thread: string, id: string): void {
    this.retired.set(id, true);
    if (this.current.get(thread)?.id === id) this.current.delete(thread);
  }

  stale(thread: string, messageId: string | null): boolean {
    if (!messageId) return false;
    if (this.retired.has(messageId)) return true;
    const card = this.current.get(thread);
    return !!card && card.id !== messageId;
  }
}
