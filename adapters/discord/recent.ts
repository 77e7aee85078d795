/** A Map that forgets its oldest entries past `limit`: dedupe sets and per-message records stay bounded. */
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
