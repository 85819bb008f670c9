// What the stock-client scripts share: their environment, how long they wait
// for anything, and waiting for an event.

/** An environment variable the Rust side sets; missing is an error. */
export const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

/** How long any awaited event may take. */
export const WAIT_MS = 10_000;

/**
 * The next `event` from `source` (a Socket.IO socket, a SignalR connection:
 * anything with `on` and `off`) whose argument passes `test`.
 */
export function next(source, event, test = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} in time`)), WAIT_MS);
    const listener = (arg) => {
      if (!test(arg)) return;
      clearTimeout(timer);
      source.off(event, listener);
      resolve(arg);
    };
    source.on(event, listener);
  });
}
