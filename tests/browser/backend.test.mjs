// The backend is chosen by measurement (src/web/backend.rs): with SwiftShader's software WebGPU
// adapter and the page's default (auto) mode, loading a model times its forward pass on both
// backends, shows both figures and trains on the faster one (the CPU here); the menu's override
// keeps WebGPU. Also: the wasm module arrives gzipped with a download progress bar. The
// measurement runs in the module with WebGPU (pkg/), which the worker loads for a software
// adapter only when asked for one thread (`threads=1`); otherwise the threaded CPU module wins
// outright (threads.test.mjs).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, WEBGPU_ARGS, openPage, waitForState } from './harness.mjs';

test('auto mode times the loaded model on SwiftShader and on the CPU, and trains on the faster', { timeout: 180_000 }, async () => {
  const session = await openPage({ args: WEBGPU_ARGS, query: '?model=tiny-bert&threads=1' });
  try {
    const { page, problems, url } = session;
    let state = await waitForState(page, (s) => s.backend !== null && s.data !== null, 60_000);
    assert.equal(state.backend.mode, 'auto');
    assert.equal(state.backend.engine, 'pkg');
    assert.ok(state.backend.gpu, 'SwiftShader gives an adapter');
    assert.equal(state.backend.gpu.software, true, `SwiftShader is a software adapter: ${JSON.stringify(state.backend.gpu)}`);
    assert.equal(state.backend.kind, 'cpu', 'a software adapter is not used before it is measured');
    assert.equal(await page.inputValue('#backend-choice'), 'auto');

    // The module's download was counted to its decoded size, sent gzipped by the server.
    const manifest = JSON.parse(await readFile(path.join(REPO, 'www', 'pkg', 'manifest.json'), 'utf8'));
    assert.deepEqual(state.wasmDownload, { loaded: manifest.wasm_bytes, total: manifest.wasm_bytes, wire: manifest.wasm_gzip_bytes });
    assert.ok(await page.isHidden('#engine-progress'), 'the progress bar goes once the module is in');
    const head = await fetch(`${url}/pkg/burnish_bg.wasm`, { method: 'HEAD', headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(head.headers.get('content-encoding'), 'gzip');
    assert.equal(Number(head.headers.get('content-length')), manifest.wasm_gzip_bytes);

    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null && s.backend?.measurement, 60_000);
    assert.deepEqual(state.errors, []);
    const m = state.backend.measurement;
    assert.match(m.what, /^classifier forward pass, 4 × \d+ tokens$/);
    assert.ok(m.cpu_ms > 0, 'the CPU was timed');
    assert.ok(m.gpu_ms === null || m.gpu_ms >= m.cpu_ms, `SwiftShader measured faster than the CPU: ${JSON.stringify(m)}`);
    assert.equal(m.chosen, 'cpu');
    assert.equal(state.backend.kind, 'cpu');
    assert.match(
      await page.textContent('#backend'),
      /^Backend: CPU \(WebAssembly, 1 thread\) — measured faster on the loaded model \(classifier forward pass, 4 × \d+ tokens\): CPU [\d.,]+ ms, WebGPU \(.+\) (\d[\d.,]* ms|did not finish within [\d,]+ ms); one thread \(asked for in the address: threads=1\)$/,
    );

    // A run started now trains on the CPU.
    await page.fill('#epochs', '1');
    await page.click('#start');
    state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    assert.ok(state.losses.length > 0);
    assert.equal(state.backend.kind, 'cpu');
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});

test('the menu can insist on WebGPU: nothing is measured', { timeout: 120_000 }, async () => {
  const session = await openPage({ args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu' });
  try {
    const { page } = session;
    await waitForState(page, (s) => s.backend !== null, 60_000);
    await page.click('#load-model');
    const state = await waitForState(page, (s) => s.model !== null, 60_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.backend.kind, 'webgpu');
    assert.equal(state.backend.mode, 'webgpu');
    assert.equal(state.backend.measurement, null);
    assert.match(await page.textContent('#backend'), /^Backend: WebGPU — .+ \(chosen in the menu below\)$/);
    // Changing the menu offers the reload that applies it.
    await page.selectOption('#backend-choice', 'auto');
    assert.ok(await page.isVisible('#backend-note'));
    assert.equal(new URL(await page.getAttribute('#backend-reload', 'href')).searchParams.get('backend'), null);
  } finally {
    await session.close();
  }
});
