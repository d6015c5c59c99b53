/**
 * GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
 * raw request body under the webhook secret.
 *
 * node:crypto rather than @octokit/webhooks-methods: that package is only a transitive
 * dependency of probot (not ours to import), and its `verify` takes the payload as a
 * string, while the signature covers the exact bytes received. The tests sign with
 * @octokit/webhooks-methods, so the two implementations are checked against each other.
 */
import { createHmac, timingSafeEqual, type Hmac } from "node:crypto";

const PREFIX = "sha256=";

/** The header value GitHub would send for `body` under `secret`. */
export function signWebhookBody(secret: string, body: Uint8Array | string): string {
  return PREFIX + createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * Whether `header` is a valid signature of `body` under `secret`. Constant-time in the
 * signature's content: a malformed header (wrong prefix, not 64 hex digits) is refused
 * before any comparison, which reveals nothing about the expected value.
 */
export function verifyWebhookSignature(
  secret: string,
  body: Uint8Array,
  header: string | undefined,
): boolean {
  if (header === undefined || !header.startsWith(PREFIX)) return false;
  const hex = header.slice(PREFIX.length);
  if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
  const given = Buffer.from(hex, "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  return timingSafeEqual(given, expected);
}

/**
 * A signature check fed as the body streams in (no second pass over a 25 MB body):
 * `update` each chunk, then `verify` the header once the body has ended.
 */
export class StreamingSignatureCheck {
  readonly #hmac: Hmac;

  constructor(secret: string) {
    this.#hmac = createHmac("sha256", secret);
  }

  update(chunk: Uint8Array): void {
    this.#hmac.update(chunk);
  }

  /** Whether `header` signs everything given to `update`. Call once. */
  verify(header: string | undefined): boolean {
    const expected = this.#hmac.digest();
    if (header === undefined || !header.startsWith(PREFIX)) return false;
    const hex = header.slice(PREFIX.length);
    if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
    return timingSafeEqual(Buffer.from(hex, "hex"), expected);
  }
}
