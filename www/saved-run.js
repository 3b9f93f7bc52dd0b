// The browser's crash-safe copy of a training run, in origin-private storage (OPFS, never leaves
// the device): `burnish-run/run.json` (what to reload: model source, data file names, recipe),
// the user's own data files (and local model files) under `files/`, and, written by the worker
// every N steps, `checkpoint.bin`: its progress ({step, total_steps, saved_at}) and the engine's
// checkpoint (weights, optimizer state, schedule, data order, RNG) in one file, so that a crash
// between two writes can never pair one step's progress with another step's weights (each file
// is swapped in whole by `close()`). After a reload or a crashed tab the page offers to resume
// from the last checkpoint.

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
    const { progress } = await readCheckpointFile(dir);
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

const MAGIC = 'BURNPRG1'; // then u32 LE length, the progress JSON, the engine's checkpoint

/** checkpoint.bin's progress record, and a function that reads the engine's checkpoint. */
async function readCheckpointFile(dir) {
  const file = await (await dir.getFileHandle('checkpoint.bin')).getFile();
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  if (new TextDecoder().decode(head.subarray(0, 8)) !== MAGIC) throw new Error('checkpoint.bin is not a Burnish saved run');
  const n = new DataView(head.buffer).getUint32(8, true);
  if (12 + n > file.size) throw new Error('checkpoint.bin is cut short');
  const progress = JSON.parse(await file.slice(12, 12 + n).text());
  return { progress, bytes: async () => new Uint8Array(await file.slice(12 + n).arrayBuffer()) };
}

export async function savedCheckpoint(name = DIR) {
  return (await readCheckpointFile(await runDir(false, name))).bytes();
}

/** Writes a checkpoint with its progress record, in one file (worker side). */
export async function saveCheckpoint(bytes, progress, name = DIR) {
  const dir = await runDir(true, name);
  const json = new TextEncoder().encode(JSON.stringify(progress));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, json.length, true);
  await writeFile(dir, 'checkpoint.bin', new Blob([MAGIC, len, json, bytes]));
}

export async function discardSavedRun(name = DIR) {
  if (!opfsAvailable()) return;
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(name, { recursive: true }).catch(() => {});
}
