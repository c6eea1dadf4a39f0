/**
 * Assertions shared by the tests.
 */
import { DeaddropError } from '../../src/util/errors.js';

/** The DeaddropError `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function errorOf(p: Promise<unknown>): Promise<DeaddropError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeaddropError) return err;
    throw err;
  }
  throw new Error('expected an error');
}
