// Runs remembered in this browser (IndexedDB, never uploaded): each finished run's (any task)
// recipe, model, data name, metrics before and after, loss curve and evaluations, and its date.
// The page lists them, compares any two side by side, re-runs one (its recipe back in the form)
// or deletes it.

const DB = 'burnish-runs';
const STORE = 'runs';

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened'));
  });
}

/** Runs `fn(store)` in one transaction and resolves with the request's result. */
async function withStore(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error ?? new Error('the run store failed'));
      tx.onabort = () => reject(tx.error ?? new Error('the run store was aborted (is storage full?)'));
    });
  } finally {
    db.close();
  }
}

export const runsAvailable = () => typeof indexedDB !== 'undefined';

/** Stores a run record; resolves with its id. */
export const rememberRun = (record) => withStore('readwrite', (s) => s.add(record));

/** Every remembered run, newest first. */
export async function listRuns() {
  const all = (await withStore('readonly', (s) => s.getAll())) ?? [];
  return all.sort((a, b) => b.id - a.id);
}

export const forgetRun = (id) => withStore('readwrite', (s) => s.delete(id));
