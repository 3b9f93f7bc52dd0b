// End-to-end training in headless Chromium on tiny-bert (www/assets/models/tiny-bert):
// once on WebGPU through SwiftShader, once on the CPU fallback. Needs www/pkg (the wasm
// build) and the assets (scripts/fetch_assets.py). Run: cd tests/browser && npm test

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEBGPU_ARGS, trainTinyBert } from './harness.mjs';

test('trains on WebGPU (SwiftShader)', { timeout: 330_000 }, async (t) => {
  await trainTinyBert({
    name: 'webgpu',
    args: WEBGPU_ARGS,
    expectBackend: { kind: 'webgpu', text: /^Backend: WebGPU — / },
    timeoutMs: 240_000, // SwiftShader emulates the GPU on the CPU: slow
    assert,
    log: (msg) => t.diagnostic(msg),
  });
});

test('trains on the CPU fallback', { timeout: 180_000 }, async (t) => {
  await trainTinyBert({
    name: 'cpu',
    args: [], // no --enable-unsafe-webgpu: no adapter, so the page must fall back
    expectBackend: { kind: 'cpu', text: /^Backend: CPU \(WebAssembly\)/ },
    timeoutMs: 90_000,
    assert,
    log: (msg) => t.diagnostic(msg),
  });
});
