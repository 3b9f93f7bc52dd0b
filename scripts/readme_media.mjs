// README screenshots and the class demo's screen recording, taken from the real page:
//   node scripts/readme_media.mjs          (after the wasm build; about three minutes)
// Writes docs/media/*.png and docs/media/class-demo.apng, an animated PNG assembled here from
// Playwright screenshots of the demo run (Playwright's video capture needs its own ffmpeg build,
// which cannot be downloaded on this machine; APNG plays in every current browser and on GitHub),
// and docs/media/class-demo.gif from it where Debian's ffmpeg is installed.

import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { REPO, openPage, waitForState } from '../tests/browser/harness.mjs';

const OUT = path.join(REPO, 'docs', 'media');

/** PNG chunks of `png` as [{type, data}]. */
function chunks(png) {
  const out = [];
  for (let at = 8; at < png.length;) {
    const len = png.readUInt32BE(at);
    out.push({ type: png.toString('latin1', at + 4, at + 8), data: png.subarray(at + 8, at + 8 + len) });
    at += 12 + len;
  }
  return out;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** An animated PNG from same-sized PNG frames, each shown `delays[i]` ms, looping forever. */
export function apng(frames, delays) {
  const first = chunks(frames[0]);
  const ihdr = first.find((c) => c.type === 'IHDR').data;
  const [width, height] = [ihdr.readUInt32BE(0), ihdr.readUInt32BE(4)];
  const parts = [frames[0].subarray(0, 8), chunk('IHDR', ihdr)];
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(frames.length, 0);
  parts.push(chunk('acTL', actl));
  let seq = 0;
  frames.forEach((png, i) => {
    const fctl = Buffer.alloc(26);
    fctl.writeUInt32BE(seq++, 0);
    fctl.writeUInt32BE(width, 4);
    fctl.writeUInt32BE(height, 8);
    fctl.writeUInt16BE(Math.round(delays[i]), 20);
    fctl.writeUInt16BE(1000, 22);
    parts.push(chunk('fcTL', fctl));
    for (const c of chunks(png).filter((c) => c.type === 'IDAT')) {
      if (i === 0) parts.push(chunk('IDAT', c.data));
      else {
        const s = Buffer.alloc(4);
        s.writeUInt32BE(seq++, 0);
        parts.push(chunk('fdAT', Buffer.concat([s, c.data])));
      }
    }
  });
  parts.push(chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}

async function stills() {
  const session = await openPage({ query: '?backend=cpu', task: null, viewport: { width: 1200, height: 760 } });
  const { page } = session;
  try {
    await page.screenshot({ path: path.join(OUT, 'task-choice.png') });
    await page.click('#task-picker [data-task="classify"]');
    await waitForState(page, (s) => s.gallery?.length > 0 && s.layerPicture !== null, 60_000);
    await page.selectOption('#strategy', 'top');
    await page.locator('#recipe-section').screenshot({ path: path.join(OUT, 'recipe-layers.png') });
    await page.locator('#model-section').screenshot({ path: path.join(OUT, 'model-gallery.png') });
  } finally {
    await session.close();
  }
}

async function demo() {
  const session = await openPage({ query: '?demo=sentiment', task: null, viewport: { width: 1100, height: 700 } });
  const { page } = session;
  const frames = [];
  const delays = [];
  const frame = async (ms) => {
    frames.push(await page.screenshot());
    delays.push(ms);
  };
  try {
    await waitForState(page, (s) => s.model !== null && s.data !== null, 120_000);
    await frame(2500);
    await page.click('#demo-start');
    await page.waitForTimeout(1500);
    await page.evaluate(() => document.querySelector('#train-section .charts').scrollIntoView({ block: 'center' }));
    for (;;) {
      await page.waitForTimeout(5000);
      const s = await page.evaluate(() => window.burnishState);
      await frame(700);
      if (s.done || s.errors.length) break;
    }
    await page.evaluate(() => document.getElementById('results').scrollIntoView({ block: 'start' }));
    await page.waitForTimeout(500);
    await frame(3000);
    await page.screenshot({ path: path.join(OUT, 'results-dashboard.png') });
    await page.evaluate(() => document.getElementById('demo-panel').scrollIntoView({ block: 'start' }));
    await page.waitForTimeout(300);
    await frame(3000);
    await page.evaluate(() => document.querySelector('#train-section .charts').scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: path.join(OUT, 'demo-training.png') });
    await writeFile(path.join(OUT, 'class-demo.apng'), apng(frames, delays));
    console.log(`class-demo.apng: ${frames.length} frames`);
    // The GIF the README shows, from the APNG (ffmpeg: Debian's package; without it only the APNG).
    const gif = path.join(OUT, 'class-demo.gif');
    const filter = 'fps=2,scale=880:-1:flags=lanczos,split[a][b];[a]palettegen=max_colors=128[p];[b][p]paletteuse=dither=bayer:bayer_scale=4';
    try {
      execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(OUT, 'class-demo.apng'), '-vf', filter, '-loop', '0', gif]);
      console.log('class-demo.gif written');
    } catch (err) {
      console.log(`class-demo.gif not written (ffmpeg: ${err.message.split('\n')[0]}); the APNG is the recording`);
    }
  } finally {
    await session.close();
  }
}

await mkdir(OUT, { recursive: true });
await stills();
await demo();

