// The browser's crash-safe copy of a training run, in origin-private storage (OPFS, never leaves
// the device): `burnish-run/run.json` (what to reload: model source, data file names, recipe),
// the user's own data files (and local model files) under `files/`, and, written by the worker
// every N steps, `checkpoint.bin` (weights, optimizer state, schedule, data order, RNG) with
// `progress.json` ({step, total_steps, saved_at}). After a reload or a crashed tab the page
// offers to resume from the last checkpoint.

const DIR = 'burnish-run';
/** The generative-models section's run (section 9) is kept apart from the classifier's. */
export const DECODER_RUN = 'burnish-decoder-run';

export const opfsAvailable = () => typeof navigator !== 'undefined' && Boolean(navigator.storage?.getDirectory);

async function runDir(create, name = DIR) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(name, { create });
}

export async function writeFile(dir, name, data) {
  const handle = await dir.getFileHandle(name, { create: true });
  const out = await handle.createWritable(); // written to a swap file, swapped in by close()
  await out.write(data);
  await out.close();
}

/** Starts a saved run: forgets any older one, stores the files and the description. */
export async function saveRunStart(meta, files, name = DIR) {
  await discardSavedRun(name);
  const dir = await runDir(true, name);
  const fileDir = await dir.getDirectoryHandle('files', { create: true });
  for (const [name, blob] of files) await writeFile(fileDir, name, blob);
  await writeFile(dir, 'run.json', JSON.stringify(meta));
}

/** The saved run's description and last checkpoint's progress, or null. */
export async function readSavedRun(name = DIR) {
  if (!opfsAvailable()) return null;
  try {
    const dir = await runDir(false, name);
    const text = async (name) => (await (await dir.getFileHandle(name)).getFile()).text();
    const meta = JSON.parse(await text('run.json'));
    const progress = JSON.parse(await text('progress.json'));
    return { meta, progress };
  } catch {
    return null; // nothing saved, or no checkpoint written yet
  }
}

/** One stored file (saved at the start as `prefix-name`) as a File called `name` again. */
export async function savedFile(prefix, name, run = DIR) {
  const dir = await (await runDir(false, run)).getDirectoryHandle('files');
  const file = await (await dir.getFileHandle(`${prefix}-${name}`)).getFile();
  return new File([file], name, { type: file.type, lastModified: file.lastModified });
}

export async function savedCheckpoint(name = DIR) {
  const dir = await runDir(false, name);
  return new Uint8Array(await (await (await dir.getFileHandle('checkpoint.bin')).getFile()).arrayBuffer());
}

/** Writes a checkpoint (worker side), then its progress record. */
export async function saveCheckpoint(bytes, progress, name = DIR) {
  const dir = await runDir(true, name);
  await writeFile(dir, 'checkpoint.bin', bytes);
  await writeFile(dir, 'progress.json', JSON.stringify(progress));
}

export async function discardSavedRun(name = DIR) {
  if (!opfsAvailable()) return;
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(name, { recursive: true }).catch(() => {});
}
