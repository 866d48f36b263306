// The keys a strict object of a zod schema accepts at a path of the data, for "did you mean" on an unknown key:
// zod's `unrecognized_keys` issue names the stray keys, not the known ones. Walks the schema as the data was
// checked: through optional/default/pipe wrappers, records and arrays, and every branch of a union.
import { z } from "zod";

/** The schemas a value at `path` may have been checked against (several under a union). */
function schemasAt(schema: z.core.$ZodType, path: readonly (string | number)[]): z.core.$ZodType[] {
  let current = unwrapped(schema);
  for (const key of path) {
    current = current.flatMap((node) => unwrapped(...child(node, key)));
    if (current.length === 0) return [];
  }
  return current;
}

function child(node: z.core.$ZodType, key: string | number): z.core.$ZodType[] {
  if (node instanceof z.core.$ZodObject) {
    const shape = node._zod.def.shape;
    return typeof key === "string" && Object.hasOwn(shape, key) ? [shape[key] as z.core.$ZodType] : [];
  }
  if (node instanceof z.core.$ZodRecord) return [node._zod.def.valueType];
  if (node instanceof z.core.$ZodArray) return typeof key === "number" ? [node._zod.def.element] : [];
  return [];
}

/** The schemas that check a value's shape, past the wrappers that only default, transform or allow null. */
function unwrapped(...nodes: z.core.$ZodType[]): z.core.$ZodType[] {
  return nodes.flatMap((node): z.core.$ZodType[] => {
    if (
      node instanceof z.core.$ZodOptional ||
      node instanceof z.core.$ZodNullable ||
      node instanceof z.core.$ZodDefault ||
      node instanceof z.core.$ZodPrefault ||
      node instanceof z.core.$ZodReadonly ||
      node instanceof z.core.$ZodCatch ||
      node instanceof z.core.$ZodNonOptional
    ) {
      return unwrapped(node._zod.def.innerType);
    }
    // `.transform()` is a pipe into a transform (the shape is its input); `z.preprocess()` a pipe out of one.
    if (node instanceof z.core.$ZodPipe) {
      return unwrapped(node._zod.def.in instanceof z.core.$ZodTransform ? node._zod.def.out : node._zod.def.in);
    }
    if (node instanceof z.core.$ZodUnion) return unwrapped(...node._zod.def.options);
    if (node instanceof z.core.$ZodLazy) return unwrapped(node._zod.def.getter());
    return [node];
  });
}

/** Every key an object at `path` accepts (the union of the branches' keys), in schema order. */
export function knownKeysAt(schema: z.core.$ZodType, path: readonly (string | number)[]): string[] {
  const keys = schemasAt(schema, path).flatMap((node) =>
    node instanceof z.core.$ZodObject ? Object.keys(node._zod.def.shape) : [],
  );
  return [...new Set(keys)];
}
