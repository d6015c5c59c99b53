/**
 * Flow names in code-unit order: the same order in JavaScript and whatever the database's
 * collation, because the "Run draft" buttons are numbered in it.
 */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
