/** The blob store port: opaque keys like `images/ab/cd.png`. One adapter per backend. */
export interface BlobStore {
  readonly kind: "fs" | "s3";
  /** Writes the whole object atomically: readers see the old object or the new one, never a part. */
  put(key: string, body: Uint8Array, opts?: { contentType?: string }): Promise<void>;
  /**
   * Writes a local file as the object, streaming it (large exports never sit in memory whole);
   * atomic like `put`.
   */
  putFile(key: string, path: string, opts?: { contentType?: string }): Promise<void>;
  /** The object's bytes, or null when there is none. */
  get(key: string): Promise<Uint8Array | null>;
  exists(key: string): Promise<boolean>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** A URL a browser can GET the object from until it expires. */
  signedUrl(key: string, opts?: { expiresInSeconds?: number }): Promise<string>;
  ping(): Promise<void>;
}

const KEY = /^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]*$/;

/** Rejects keys that could escape a folder or that S3 treats badly. */
export function assertBlobKey(key: string): void {
  if (
    !KEY.test(key) ||
    key.length > 1024 ||
    key.split("/").some((part) => part === ".." || part === "" || part === ".")
  ) {
    throw new Error(`invalid blob key ${JSON.stringify(key)}`);
  }
}
