// Small memory-bounded collections: a long-running bot sees an unbounded number of events and messages,
// and only recent ones matter (platforms retry within minutes, buttons are clicked soon after posting).

/** A Map that forgets its oldest entries beyond `limit`. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.has(key)) this.delete(key);
    super.set(key, value);
    while (this.size > this.limit) this.delete(this.keys().next().value as K);
    return this;
  }

  /** Records `key`; true when it was already there (a duplicate delivery). */
  seen(key: K, value: V): boolean {
    if (this.has(key)) return true;
    this.set(key, value);
    return false;
  }
}

/** Remembers recent keys; `firstTime` is true only the first time a key is seen. */
export class RecentKeys {
  private readonly keys: BoundedMap<string, true>;

  constructor(limit = 20_000) {
    this.keys = new BoundedMap(limit);
  }

  firstTime(...keys: string[]): boolean {
    const seen = keys.some((k) => this.keys.has(k));
    for (const k of keys) this.keys.set(k, true);
    return !seen;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }
}
