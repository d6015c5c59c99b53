import { createHash } from "node:crypto";

/** The version id of a local flow file: the sha256 of its content, in hex. */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
