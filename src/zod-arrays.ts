// `arrayOf`: a zod array that stops at its first bad element. Top-level so that the Responses item rule
// (responses-items.ts), read by protocols/, upstream/ and streaming/, builds its schemas as the doors do.
import { z } from "zod";

/**
 * `z.array(element)` that stops at the first bad element. zod's own array checks every element and keeps an issue for
 * each, of which the client is shown one: 1,000,000 bad `messages` (a 2 MB body) held the event loop for 4.5 s and
 * more and took 700 MB, and nested arrays (content blocks inside messages) multiply it. The first bad element's
 * issues come out as zod's own would (path `[index, ...]`), so the 400 reads the same. `bounds` are the array's own
 * checks (its type error, `.min`, `.max`), made on `z.array(z.unknown())` and run before any element is looked at.
 */
export function arrayOf<T extends z.ZodType>(element: T, bounds: z.ZodArray<z.ZodUnknown> = z.array(z.unknown())) {
  return bounds.transform((items, context): z.output<T>[] => {
    const parsed: z.output<T>[] = [];
    for (let index = 0; index < items.length; index++) {
      // zod's own array runs its element this way (core's `_zod.run`, which `safeParse` wraps): the raw issues are
      // finished (messages made, error maps applied) by the top-level parse as if zod's array had found them, and no
      // result or error object is made per element (`safeParse` per element was 2 to 4 times slower).
      const result = element._zod.run({ value: items[index], issues: [] }, {});
      if (result instanceof Promise) throw new Error("arrayOf: an asynchronous element schema cannot be checked here");
      if (result.issues.length > 0) {
        for (const issue of result.issues) context.issues.push({ ...issue, path: [index, ...(issue.path ?? [])] });
        return z.NEVER;
      }
      parsed.push(result.value as z.output<T>);
    }
    return parsed;
  });
}
