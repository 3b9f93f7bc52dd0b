// Page events between steps that must not import each other (a step lower down tells the ones
// above it that something changed): `on('data-loaded', fn)`, `await Promise.all(emit('data-loaded'))`.

const handlers = new Map(); // event name -> [fn]

/** Calls `fn(...args)` on every `emit(name, ...args)`. */
export function on(name, fn) {
  if (!handlers.has(name)) handlers.set(name, []);
  handlers.get(name).push(fn);
}

/** Calls the handlers of `name` in the order they were added; returns what each returned (await
 * them with Promise.all). A handler that throws stops the emit and throws to the caller. */
export function emit(name, ...args) {
  return (handlers.get(name) ?? []).map((fn) => fn(...args));
}
